# Sourced by the side-by-side benchmarks (bench/mtmd.sh, bench/qwen_omni.sh). The cores are shared: before each run
# wait (up to 10 min) until the machine has been idle for 2 s (under 10 % busy), and after it log how many cores
# other processes kept busy on average during it (all busy jiffies from /proc/stat less the run's own user + system
# time), which shows when something else ran at the same time. The caller sets LOG.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
wait_idle() {
  local end=$((SECONDS + 600)) a b
  while [ $SECONDS -lt $end ]; do
    a=$(busy); sleep 2; b=$(busy)
    awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," ");split(b,y," ");exit !((y[1]-x[1])<0.1*(y[2]-x[2]))}' && return 0
  done
  echo "## warning: not idle after 10 min" >> "$LOG"
}
# timed NAME PATTERN CMD...: runs CMD after wait_idle, appends its stderr lines matching PATTERN and the cores others
# used to $LOG.
timed() {
  local name="$1" pat="$2" a b; shift 2
  wait_idle
  echo "## $name" >> "$LOG"
  a=$(busy)
  local TIMEFORMAT="%R %U %S" tm
  tm=$( { time "$@" 2>&1 >/dev/null | grep -E "$pat" >> "$LOG" || true; } 2>&1 )
  b=$(busy)
  awk -v a="$a" -v b="$b" -v tm="$tm" -v hz="$(getconf CLK_TCK)" 'BEGIN{split(a,x," ");split(b,y," ");
    split(tm,t," "); printf "## others %.2f\n", ((y[1]-x[1])/hz - t[2] - t[3]) / t[1]}' >> "$LOG"
}
