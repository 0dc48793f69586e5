#!/bin/bash
# A first Corral job: reports where it runs, then does a short computation.
# Submit with:  qsub examples/hello.sh        (or: qsub -sync y examples/hello.sh)
# The #$ lines are Grid Engine directives; options on the qsub command line override them.
#$ -N hello
#$ -cwd
#$ -j y
#$ -pe smp 1
#$ -l h_rt=0:05:00

echo "hello from ${HOSTNAME:-$(hostname)} (Corral node ${CORRAL_NODE:-?})"
echo "job ${JOB_ID} '${JOB_NAME}', ${NSLOTS} slot(s), started $(date '+%H:%M:%S')"
echo "working directory: $(pwd)"

# A small computation: the primes below 20000, counted by trial division.
limit=20000
count=$(awk -v n="$limit" 'BEGIN {
  c = 0
  for (i = 2; i < n; i++) {
    p = 1
    for (d = 2; d * d <= i; d++) if (i % d == 0) { p = 0; break }
    c += p
  }
  print c
}')
echo "there are ${count} primes below ${limit}"
