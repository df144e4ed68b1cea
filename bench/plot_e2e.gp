# bench/plot_e2e.gp -- how the sequential model's /recommend cost grows with
# the work, from the medians bench/run_e2e.sh writes (var/e2e/results/
# scaling.tsv: axis items hist c1_rps c1_p50_ms c1_p99_ms ... cN_rps ...):
# left, against the catalogue size (log x, HIST history items); right,
# against the history length (100k items). p50 and p99 at concurrency 1 on
# the left axis, throughput at concurrency `conc` on the right one.
#   gnuplot -e "file='var/e2e/results/scaling.tsv'; out='docs/bench-e2e-scaling.png'; conc=32" bench/plot_e2e.gp
if (!exists("file")) file = 'var/e2e/results/scaling.tsv'
if (!exists("out")) out = 'docs/bench-e2e-scaling.png'
if (!exists("conc")) conc = 32
set terminal pngcairo size 1200,500 font 'sans,10' noenhanced
set output out
set datafile separator tab
set datafile columnheaders
set datafile missing 'NaN'
thr = sprintf('c%d_rps', conc)
on(axis, x) = (strcol(1) eq axis) ? x : NaN
set multiplot layout 1,2 title sprintf('hyperrec seq /recommend (k 20; wrk -t1; medians): latency at 1 connection, throughput at %d', conc)
set grid
set key outside bottom center horizontal
set bmargin 6
set ylabel 'latency at c1 (ms)'
set y2label sprintf('requests / s at c%d', conc)
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
# a panel without points (SIZES or HISTS empty) is left empty
set title 'vs catalogue size'
set xlabel 'items (log)'
set logscale x
set format x '%.0s%c'
undefine STATS_*
stats file u (on('items', column('items'))) nooutput
n_items = exists('STATS_records') ? STATS_records : 0
undefine STATS_*
stats file u (on('hist', column('hist'))) nooutput
n_hist = exists('STATS_records') ? STATS_records : 0
if (n_items > 0) {
  plot file u (on('items', column('items'))):'c1_p50_ms' w lp pt 7 lc rgb '#1f77b4' t 'p50 c1', \
       '' u (on('items', column('items'))):'c1_p99_ms' w lp pt 5 lc rgb '#d62728' t 'p99 c1', \
       '' u (on('items', column('items'))):thr axes x1y2 w lp pt 9 dt 2 lc rgb '#2ca02c' t sprintf('req/s c%d', conc)
} else { set multiplot next }
set title 'vs history length (100k items)'
set xlabel 'history items per user'
unset logscale x
set format x '%g'
if (n_hist > 0) {
  plot file u (on('hist', column('hist'))):'c1_p50_ms' w lp pt 7 lc rgb '#1f77b4' t 'p50 c1', \
       '' u (on('hist', column('hist'))):'c1_p99_ms' w lp pt 5 lc rgb '#d62728' t 'p99 c1', \
       '' u (on('hist', column('hist'))):thr axes x1y2 w lp pt 9 dt 2 lc rgb '#2ca02c' t sprintf('req/s c%d', conc)
}
unset multiplot
