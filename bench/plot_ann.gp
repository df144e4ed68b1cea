# bench/plot_ann.gp -- the recall@10 / queries-per-second curves of our index
# and hnswlib from the medians bench/run_ann.sh writes (var/ann/results/
# <set>.<method>.tsv: ef recall qps), one panel per set.
#   gnuplot -e "dir='var/ann/results'; out='docs/ann-recall-qps.png'" bench/plot_ann.gp
if (!exists("dir")) dir = 'var/ann/results'
if (!exists("out")) out = 'docs/ann-recall-qps.png'
set terminal pngcairo size 1200,500 font 'sans,10' noenhanced
set output out
set multiplot layout 1,2 title 'HNSW, inner product, dim 64, M=16, ef_construction=200: one query at a time, one thread (medians; labels are ef)'
set xlabel 'recall@10'
set ylabel 'queries / second (log)'
set logscale y
set grid
set key bottom left
set xrange [0.80:1.0]
set arrow 1 from 0.95, graph 0 to 0.95, graph 1 nohead dt 2 lc rgb '#888888'
set arrow 2 from 0.99, graph 0 to 0.99, graph 1 nohead dt 2 lc rgb '#888888'
do for [s in "100k 1M"] {
  set title s.' items'
  plot dir.'/'.s.'.ours.tsv' u 2:3 w lp pt 7 lc rgb '#d62728' t 'hyperrec (fp16 rows)', \
       '' u 2:3:(sprintf('%d', $1)) w labels offset 0,0.8 font ',7' tc rgb '#d62728' notitle, \
       dir.'/'.s.'.hnswlib.tsv' u 2:3 w lp pt 5 lc rgb '#1f77b4' t 'hnswlib', \
       '' u 2:3:(sprintf('%d', $1)) w labels offset 0,-0.8 font ',7' tc rgb '#1f77b4' notitle
}
unset multiplot
