# bench/plot_training.gp -- a training curve from `hyperrec-train ... --report
# FILE` (CSV: epoch,seconds,loss[,hr10,ndcg10]): the loss on the left axis,
# HR@10 and NDCG@10 of the evaluation target on the right. `make
# plot-training` runs it on the loo validation curve.
#   gnuplot -e "in='docs/training-curve.csv'; out='docs/training-curve.png'" bench/plot_training.gp
if (!exists("in")) in = 'docs/training-curve.csv'
if (!exists("out")) out = 'docs/training-curve.png'
if (!exists("title")) title = 'sequential model on loo: training loss and validation metrics per epoch'
set terminal pngcairo size 900,500 font 'sans,10' noenhanced
set output out
set datafile separator ','
set title title
set xlabel 'epoch'
set ylabel 'training loss (cross-entropy per next item)'
set y2label 'validation metric'
set ytics nomirror
set y2tics
set grid
set key center right
plot in u 1:3 every ::1 w lp pt 7 ps 0.6 lc rgb '#1f77b4' t 'loss', \
     in u 1:5 every ::1 axes x1y2 w lp pt 5 ps 0.6 lc rgb '#d62728' t 'NDCG@10', \
     in u 1:4 every ::1 axes x1y2 w lp pt 9 ps 0.6 lc rgb '#2ca02c' t 'HR@10'
