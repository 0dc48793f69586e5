// qsub's option and directive parsing (qtools/qsub_options.h) against sge-compat.md §2
// and §6: exact values, exact error and warning texts.
#include "qtools/qsub_options.h"

#include <doctest/doctest.h>

#include "common/protocol.h"

namespace corral {
namespace {

QsubInput Input(std::vector<std::string> args, std::string script = "#!/bin/sh\necho hi\n") {
  QsubInput in;
  in.args = std::move(args);
  in.script_text = std::move(script);
  in.env = {{"PATH", "/usr/bin:/bin"},
            {"SHELL", "/bin/bash"},
            {"HOME", "/home/alice"},
            {"FOO", "foo-value"},
            {"BAR", "bar-value"}};
  in.cwd = "/work/run";
  in.home = "/home/alice";
  in.host = "submit1";
  in.user = "alice";
  return in;
}

ParsedQsub MustParse(const QsubInput& in) {
  Result<ParsedQsub> p = ParseQsub(in);
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message()));
  return *p;
}

std::string ErrorOf(const QsubInput& in) {
  Result<ParsedQsub> p = ParseQsub(in);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code() == Code::kInvalidArgument);
  return p.error().message();
}

TEST_CASE("qsub options: defaults for a plain script") {
  ParsedQsub p = MustParse(Input({"job.sh"}));
  CHECK(p.spec.name == "job.sh");
  CHECK(p.spec.cwd == "/home/alice");  // Grid Engine runs in $HOME without -cwd
  CHECK(p.spec.script == "#!/bin/sh\necho hi\n");
  CHECK(p.spec.args.empty());
  CHECK_FALSE(p.spec.binary);
  CHECK(p.spec.request == Resources{1, 0});
  CHECK(p.spec.h_rt_s == 0);
  CHECK_FALSE(p.spec.join);
  CHECK_FALSE(p.spec.hold);
  CHECK_FALSE(p.terse);
  CHECK_FALSE(p.sync);
  CHECK(p.warnings.empty());
  CHECK(p.script_label == "job.sh");
  const std::map<std::string, std::string> env = {
      {"SGE_O_HOME", "/home/alice"},  {"SGE_O_PATH", "/usr/bin:/bin"},
      {"SGE_O_WORKDIR", "/work/run"}, {"SGE_O_HOST", "submit1"},
      {"SGE_O_LOGNAME", "alice"},     {"SGE_O_SHELL", "/bin/bash"}};
  CHECK(p.spec.env == env);
}

TEST_CASE("qsub options: -l gpu=N and gpus=N request GPUs") {
  CHECK(MustParse(Input({"job.sh"})).spec.request.gpus == 0);
  CHECK(MustParse(Input({"-l", "gpu=2", "job.sh"})).spec.request.gpus == 2);
  ParsedQsub p = MustParse(Input({"-pe", "smp", "4", "job.sh"}, "#!/bin/sh\n#$ -l h_rt=10,gpus=3\n"));
  CHECK(p.spec.request.gpus == 3);
  CHECK(p.spec.request.cores == 4);
  CHECK(p.warnings.empty());
  CHECK(ErrorOf(Input({"-l", "gpu=lots", "job.sh"})).find("gpu=lots") != std::string::npos);
}

TEST_CASE("qsub options: -r and --max-attempts (from the line or a directive)") {
  CHECK(MustParse(Input({"job.sh"})).spec.rerunnable);
  CHECK(MustParse(Input({"job.sh"})).spec.max_attempts == 0);
  CHECK_FALSE(MustParse(Input({"-r", "n", "job.sh"})).spec.rerunnable);
  ParsedQsub p = MustParse(Input({"job.sh"}, "#!/bin/sh\n#$ -r no\n#$ --max-attempts 5\n"));
  CHECK_FALSE(p.spec.rerunnable);
  CHECK(p.spec.max_attempts == 5);
  CHECK(MustParse(Input({"-r", "y", "job.sh"}, "#!/bin/sh\n#$ -r n\n")).spec.rerunnable);
  CHECK(ErrorOf(Input({"--max-attempts", "0", "job.sh"})).find("1 to 1000") != std::string::npos);
  CHECK(ErrorOf(Input({"-r", "maybe", "job.sh"})).find("maybe") != std::string::npos);
}

TEST_CASE("qsub options: -pe takes two words and the script follows") {
  ParsedQsub p = MustParse(Input({"-pe", "smp", "4", "snakejob.a.3.sh"}));
  CHECK(p.spec.request.cores == 4);
  CHECK(p.spec.name == "snakejob.a.3.sh");
  CHECK(p.spec.args.empty());

  ParsedQsub range = MustParse(Input({"-pe", "mpi", "2-8", "job.sh"}));
  CHECK(range.spec.request.cores == 2);

  CHECK(ErrorOf(Input({"-pe", "smp"})) == "option '-pe' needs 2 values");
  CHECK(ErrorOf(Input({"-pe", "smp", "four", "job.sh"})) ==
        "-pe smp four: 'four' is not a positive number of slots");
}

TEST_CASE("qsub options: words after the script are its arguments") {
  ParsedQsub p = MustParse(Input({"-N", "x", "job.sh", "-N", "y", "--flag"}));
  CHECK(p.spec.name == "x");
  CHECK(p.spec.args == std::vector<std::string>{"-N", "y", "--flag"});
}

TEST_CASE("qsub options: directives on any line, comments and blanks trimmed") {
  const std::string script =
      "#!/bin/bash\n"
      "echo start\n"
      "#$ -N early   # the name\n"
      "sleep 1\n"
      "   #$ -N not-a-directive\n"  // first two bytes must be "#$"
      "#$\t-l h_rt=1:30:00\t\n"
      "#$ # only a comment\n"
      "echo done\n";
  ParsedQsub p = MustParse(Input({"job.sh"}, script));
  CHECK(p.spec.name == "early");
  CHECK(p.spec.h_rt_s == 5400);
  CHECK(p.spec.script == script);  // spooled verbatim
}

TEST_CASE("qsub options: later directives and the command line win") {
  const std::string script =
      "#$ -N first -j y\n"
      "#$ -N second\n"
      "#$ -l h_rt=100\n";
  ParsedQsub from_script = MustParse(Input({"job.sh"}, script));
  CHECK(from_script.spec.name == "second");
  CHECK(from_script.spec.join);
  CHECK(from_script.spec.h_rt_s == 100);

  ParsedQsub p = MustParse(Input({"-N", "cli", "-j", "no", "-l", "h_rt=200", "job.sh"}, script));
  CHECK(p.spec.name == "cli");
  CHECK_FALSE(p.spec.join);
  CHECK(p.spec.h_rt_s == 200);
}

TEST_CASE("qsub options: unknown options are errors naming where") {
  CHECK(ErrorOf(Input({"-x", "job.sh"})) == "unknown option '-x'");
  CHECK(ErrorOf(Input({"job.sh"}, "#!/bin/sh\n#$ -N ok\n#$ -cwd -x 1\n")) ==
        "job.sh:3: unknown option '-x' in #$ directive");
  CHECK(ErrorOf(Input({}, "#$ -N ok\n#$ -N 9lives\n")) ==
        "STDIN:2: -N 9lives: job name may not start with a digit");
  CHECK(ErrorOf(Input({"job.sh"}, "#$ stray\n")) ==
        "job.sh:1: unexpected word 'stray' in #$ directive");
  CHECK(ErrorOf(Input({"-N"})) == "option '-N' needs a value");
}

TEST_CASE("qsub options: job name rules of sge_types(5)") {
  CHECK(MustParse(Input({"-N", "dask-worker(1)", "job.sh"})).spec.name == "dask-worker(1)");
  CHECK(ErrorOf(Input({"-N", "1job", "job.sh"})) == "-N 1job: job name may not start with a digit");
  for (const char* bad : {"a/b", "a:b", "a@b", "a\\b", "a*b", "a?b", "a b"}) {
    CAPTURE(bad);
    CHECK(ErrorOf(Input({"-N", bad, "job.sh"})) ==
          std::string("-N ") + bad +
              ": job name may not contain whitespace, control characters or any of / : @ \\ * ?");
  }
  CHECK_FALSE(ValidateJobName("").ok());
  CHECK(ValidateJobName("snakejob.a.3.sh").ok());
}

TEST_CASE("qsub options: other -l names go to the scheduler, which knows the cluster's") {
  // Consumables and boolean features are defined by the cluster's configuration: qsub
  // passes them on and the scheduler interprets them (or warns: scheduler/requests.h).
  ParsedQsub p = MustParse(Input({"-l", "tmpdir=<TBD>,h_rt=00:30:00,matlab=2", "job.sh"}));
  CHECK(p.spec.h_rt_s == 1800);
  CHECK(p.spec.other_resources ==
        std::map<std::string, std::string>{{"matlab", "2"}, {"tmpdir", "<TBD>"}});
  CHECK(p.warnings.empty());

  ParsedQsub d = MustParse(Input({"job.sh"}, "#$ -l infiniband\n"));
  CHECK(d.spec.other_resources.at("infiniband") == "TRUE");
  CHECK(MustParse(Input({"job.sh"}, "#$ -l gpu\n")).spec.request.gpus == 1);
}

TEST_CASE("qsub options: -l arch= and -l feature= require node features") {
  ParsedQsub p = MustParse(Input({"-l", "arch=avx512", "-l", "feature=bigmem+ssd", "job.sh"}));
  CHECK(p.spec.features == std::vector<std::string>{"avx512", "bigmem", "ssd"});
  CHECK(p.spec.other_resources.empty());
  CHECK_FALSE(ParseQsub(Input({"-l", "feature=a++b", "job.sh"})).has_value());
}

TEST_CASE("qsub options: memory is per slot as in Grid Engine") {
  CHECK(MustParse(Input({"-l", "h_vmem=2G", "-pe", "smp", "4", "job.sh"})).spec.request ==
        Resources{4, 8192});
  // The slot count may come after the memory request, even from the command line.
  CHECK(MustParse(Input({"-pe", "smp", "3", "job.sh"}, "#$ -l mem_free=512M\n")).spec.request ==
        Resources{3, 1536});
  CHECK(MustParse(Input({"-l", "h_rss=100M,slots=2", "job.sh"})).spec.request == Resources{2, 200});
  // Several memory resources: the largest per-slot value counts.
  CHECK(MustParse(Input({"-l", "mem_free=1G", "-l", "h_vmem=3G", "job.sh"})).spec.request ==
        Resources{1, 3072});
  CHECK(MustParse(Input({"-l", "s_vmem=1500K", "job.sh"})).spec.request.mem_mb == 2);  // rounds up
  CHECK(ErrorOf(Input({"-l", "h_vmem=lots", "job.sh"})) ==
        "-l h_vmem=lots: 'lots' is not a size (e.g. 4G, 512M)");
}

TEST_CASE("qsub options: h_rt in seconds or h:m:s") {
  CHECK(MustParse(Input({"-l", "h_rt=3600", "job.sh"})).spec.h_rt_s == 3600);
  CHECK(MustParse(Input({"-l", "h_rt=01:00:05", "job.sh"})).spec.h_rt_s == 3605);
  CHECK(MustParse(Input({"-l", "h_rt=2:30", "job.sh"})).spec.h_rt_s == 150);
  ParsedQsub s_rt = MustParse(Input({"-l", "s_rt=0:10:00", "job.sh"}));
  CHECK(s_rt.spec.h_rt_s == 0);
  CHECK(s_rt.spec.other_resources.at("s_rt") == "600");
  CHECK(ErrorOf(Input({"-l", "h_rt=soon", "job.sh"})) ==
        "-l h_rt=soon: 'soon' is not a duration (e.g. 1:30:00, 5400, 90m)");
}

TEST_CASE("qsub options: -terse and -sync as directives or options") {
  ParsedQsub p = MustParse(Input({"job.sh"}, "#$ -terse\n"));
  CHECK(p.terse);
  CHECK_FALSE(p.sync);
  CHECK(MustParse(Input({"-sync", "y", "job.sh"})).sync);
  CHECK_FALSE(MustParse(Input({"-sync", "n", "job.sh"}, "#$ -sync y\n")).sync);
  CHECK(ErrorOf(Input({"-sync", "maybe", "job.sh"})) == "-sync: expected y or n, got 'maybe'");
}

TEST_CASE("qsub options: working directory and output paths") {
  CHECK(MustParse(Input({"-cwd", "job.sh"})).spec.cwd == "/work/run");
  CHECK(MustParse(Input({"-wd", "sub/dir", "job.sh"})).spec.cwd == "/work/run/sub/dir");
  CHECK(MustParse(Input({"-wd", "/abs", "job.sh"})).spec.cwd == "/abs");

  ParsedQsub p = MustParse(Input({"-cwd", "-o", "logs/", "-e", "host1:/tmp/err.txt", "job.sh"}));
  CHECK(p.spec.stdout_path == "/work/run/logs/");  // trailing '/' = directory, kept
  CHECK(p.spec.stderr_path == "/tmp/err.txt");     // [host:] dropped
  // Without -cwd relative paths are relative to $HOME, like the job itself.
  CHECK(MustParse(Input({"-o", "out.txt", "job.sh"})).spec.stdout_path == "/home/alice/out.txt");
  CHECK(MustParse(Input({"-o", "$HOME/o", "job.sh"})).spec.stdout_path == "$HOME/o");
  CHECK(MustParse(Input({"-j", "yes", "job.sh"})).spec.join);
}

TEST_CASE("qsub options: -V exports the environment, -v adds variables") {
  ParsedQsub all = MustParse(Input({"-V", "job.sh"}));
  CHECK(all.spec.env.at("FOO") == "foo-value");
  CHECK(all.spec.env.at("HOME") == "/home/alice");
  CHECK(all.spec.env.at("SGE_O_WORKDIR") == "/work/run");
  CHECK(all.spec.env.size() == 5 + 6);

  ParsedQsub some = MustParse(Input({"-v", "FOO,X=1,MISSING", "-v", "Y=a=b", "job.sh"}));
  CHECK(some.spec.env.at("FOO") == "foo-value");
  CHECK(some.spec.env.at("X") == "1");
  CHECK(some.spec.env.at("Y") == "a=b");
  CHECK_FALSE(some.spec.env.contains("MISSING"));
  CHECK_FALSE(some.spec.env.contains("BAR"));
  CHECK(some.spec.env.size() == 3 + 6);
}

TEST_CASE("qsub options: -b y runs a command and does not read a script") {
  QsubInput in = Input({"-b", "y", "-N", "t", "/bin/echo", "hello", "world"}, "#$ -N ignored\n");
  ParsedQsub p = MustParse(in);
  CHECK(p.spec.binary);
  CHECK(p.spec.script.empty());
  CHECK(p.spec.name == "t");
  CHECK(p.spec.args == std::vector<std::string>{"/bin/echo", "hello", "world"});
  CHECK(MustParse(Input({"-b", "y", "/bin/true"})).spec.name == "true");
  CHECK(ErrorOf(Input({"-b", "y"})) == "-b y needs a command");

  Result<QsubCommandLine> cl = SplitQsubCommandLine({"-b", "y", "true"});
  REQUIRE(cl.has_value());
  CHECK(cl->binary);
  CHECK_FALSE(ScriptFromStdin(*cl));
}

TEST_CASE("qsub options: no script word or '-' reads standard input") {
  ParsedQsub none = MustParse(Input({"-terse"}, "#$ -l h_rt=60\necho from stdin\n"));
  CHECK(none.spec.name == "STDIN");
  CHECK(none.script_label == "STDIN");
  CHECK(none.spec.h_rt_s == 60);
  CHECK(MustParse(Input({"-"})).spec.name == "STDIN");
  Result<QsubCommandLine> cl = SplitQsubCommandLine({"-cwd"});
  REQUIRE(cl.has_value());
  CHECK(ScriptFromStdin(*cl));
  Result<QsubCommandLine> file = SplitQsubCommandLine({"-cwd", "job.sh"});
  REQUIRE(file.has_value());
  CHECK_FALSE(ScriptFromStdin(*file));
  CHECK(*file->script == "job.sh");
}

TEST_CASE("qsub options: #PBS lines of dask-jobqueue's PBSCluster") {
  const std::string script =
      "#!/usr/bin/env bash\n"
      "\n"
      "#PBS -N dask-worker\n"
      "#PBS -q batch\n"
      "#PBS -A proj7\n"
      "#PBS -l select=1:ncpus=2:mem=954MB\n"
      "#PBS -l walltime=00:30:00\n"
      "#PBS -e /tmp/logs/\n"
      "#PBS -o /tmp/logs/\n"
      "/usr/bin/python3 -m distributed.cli.dask_worker tcp://h:1\n";
  ParsedQsub p = MustParse(Input({"/tmp/tmpab12.sh"}, script));
  CHECK(p.spec.name == "dask-worker");
  CHECK(p.spec.queue == "batch");
  CHECK(p.spec.project == "proj7");
  CHECK(p.spec.request == Resources{2, 954});  // PBS memory is for the chunk, not per cpu
  CHECK(p.spec.h_rt_s == 1800);
  CHECK(p.spec.stderr_path == "/tmp/logs/");
  CHECK(p.spec.stdout_path == "/tmp/logs/");
  CHECK_FALSE(p.spec.join);
  CHECK(p.spec.cwd == "/home/alice");  // PBS jobs start in $HOME
  CHECK(p.spec.env.at("PBS_O_WORKDIR") == "/work/run");
  CHECK(p.warnings.empty());

  ParsedQsub torque = MustParse(Input({"j.sh"}, "#PBS -l nodes=1:ppn=4,mem=2GB\n#PBS -j oe\n"));
  CHECK(torque.spec.request == Resources{4, 2048});
  CHECK(torque.spec.join);

  ParsedQsub odd = MustParse(Input({"j.sh"}, "#PBS -Z 1\n"));
  REQUIRE(odd.warnings.size() == 1);
  CHECK(odd.warnings[0] == "j.sh:1: #PBS option '-Z' is not supported; rest of the line ignored");
}

TEST_CASE("qsub options: dask-jobqueue's SGE script") {
  const std::string script =
      "#!/usr/bin/env bash\n"
      "\n"
      "#$ -N dask-worker\n"
      "#$ -l h_rt=00:30:00\n"
      "#$ -e /tmp/logs/\n"
      "#$ -o /tmp/logs/\n"
      "#$ -cwd\n"
      "#$ -j y\n"
      "#$ -pe smp 4\n"
      "#$ -V\n"
      "#$ -w e\n"
      "/usr/bin/python3 -m distributed.cli.dask_worker tcp://127.0.0.1:8786 --nthreads 4\n";
  ParsedQsub p = MustParse(Input({"/tmp/tmpxyz.sh"}, script));
  CHECK(p.spec.name == "dask-worker");
  CHECK(p.spec.h_rt_s == 1800);
  CHECK(p.spec.cwd == "/work/run");
  CHECK(p.spec.join);
  CHECK(p.spec.request == Resources{4, 0});
  CHECK(p.spec.env.at("FOO") == "foo-value");
  CHECK(p.warnings.empty());
}

TEST_CASE("qsub options: arrays, -tc, sweeps and dependencies") {
  ParsedQsub a = MustParse(Input({"-t", "1-1000:2", "-tc", "5", "job.sh"}));
  REQUIRE(a.spec.array.has_value());
  CHECK(*a.spec.array == TaskRange{1, 1000, 2});
  CHECK(a.spec.max_running_tasks == 5);
  CHECK(MustParse(Input({"job.sh"}, "#$ -t 7\n")).spec.array == TaskRange{7, 7, 1});
  CHECK(ErrorOf(Input({"-t", "0-5", "job.sh"})) ==
        "-t 0-5: '0-5' is not a task range (N, N-M or N-M:S; 1 <= N <= M <= 100000000)");
  CHECK(ErrorOf(Input({"-tc", "0", "job.sh"})) == "-tc 0: expected a positive number");

  ParsedQsub d = MustParse(Input({"-hold_jid", "12,13,prep", "-hold_jid_ad", "20", "--after-ok",
                                  "30:31", "--after-notok", "40", "job.sh"}));
  CHECK(d.spec.after_any == std::vector<JobId>{12, 13});
  CHECK(d.hold_names == std::vector<std::string>{"prep"});
  CHECK(d.spec.after_tasks == std::vector<JobId>{20});
  CHECK(d.spec.after_ok == std::vector<JobId>{30, 31});
  CHECK(d.spec.after_notok == std::vector<JobId>{40});
  CHECK(ErrorOf(Input({"--after-ok", "x", "job.sh"})) == "--after-ok x: expected job ids");

  ParsedQsub s = MustParse(Input({"--sweep", "points.yaml", "job.sh"}));
  CHECK(s.sweep_file == "points.yaml");
  CHECK(ErrorOf(Input({"--sweep", "p.yaml", "-t", "1-3", "job.sh"})) ==
        "give either -t or --sweep: a sweep makes one task per point");
}

TEST_CASE("qsub options: accepted compatibility options and clear errors") {
  ParsedQsub p = MustParse(Input(
      {"-notify", "-r",    "y",  "-m",   "bea",      "-M",        "a@b",      "-p",    "-5",
       "-R",      "y",     "-w", "e",    "-binding", "linear:2",  "-binding", "set",   "linear:1",
       "-q",      "all.q", "-P", "proj", "-S",       "/bin/bash", "-h",       "-hard", "job.sh"}));
  CHECK(p.spec.queue == "all.q");
  CHECK(p.spec.project == "proj");
  CHECK(p.spec.shell == "/bin/bash");
  CHECK(p.spec.hold);
  CHECK(p.warnings.empty());


  ParsedQsub soft =
      MustParse(Input({"-soft", "-l", "h_rt=10", "-hard", "-l", "h_vmem=1G", "job.sh"}));
  CHECK(soft.spec.h_rt_s == 0);
  CHECK(soft.spec.request.mem_mb == 1024);
  REQUIRE(soft.warnings.size() == 1);
  CHECK(soft.warnings[0] ==
        "soft resource request 'h_rt=10' ignored (only hard requests are supported)");

  CHECK(ErrorOf(Input({"-w", "v", "job.sh"})) ==
        "-w v: verification-only submission is not supported");
  CHECK(ErrorOf(Input({"-p", "2000", "job.sh"})) == "-p 2000: expected a number in -1023..1024");
}

TEST_CASE("qsub options: -clear forgets earlier options, -C changes the prefix") {
  ParsedQsub p = MustParse(Input({"-clear", "-N", "after", "job.sh"}, "#$ -N before -j y -cwd\n"));
  CHECK(p.spec.name == "after");
  CHECK_FALSE(p.spec.join);
  CHECK(p.spec.cwd == "/home/alice");

  ParsedQsub c = MustParse(Input({"-C", "#MY", "job.sh"}, "#$ -N ignored\n#MY -N mine\n"));
  CHECK(c.spec.name == "mine");
  ParsedQsub off = MustParse(Input({"-C", "", "job.sh"}, "#$ -N ignored\n"));
  CHECK(off.spec.name == "job.sh");
}

TEST_CASE("qsub options: help, script size limit, word splitting") {
  CHECK(MustParse(Input({"-help"})).help);
  CHECK(MustParse(Input({"--help", "job.sh"})).help);
  CHECK(ErrorOf(Input({"big.sh"}, std::string(kMaxScriptBytes + 1, 'x'))) ==
        "big.sh: the script is " + std::to_string(kMaxScriptBytes + 1) + " bytes; the limit is " +
            std::to_string(kMaxScriptBytes));

  Result<std::vector<std::string>> w = SplitOptionWords(" -N 'a b'  -v \"X=1 2\" -o a\\ b ");
  REQUIRE(w.has_value());
  CHECK(*w == std::vector<std::string>{"-N", "a b", "-v", "X=1 2", "-o", "a b"});
  CHECK_FALSE(SplitOptionWords("-N 'open").has_value());
}

}  // namespace
}  // namespace corral
