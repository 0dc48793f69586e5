// Grid Engine text (qtools/sge_format.h) against golden strings built from Grid
// Engine's printf formats (sge-compat.md §3-5). Times are rendered in TZ=UTC.
#include "qtools/sge_format.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>

namespace corral {
namespace {

constexpr TimeMs kSubmit = 1704190272000;  // Tue 2024-01-02 10:11:12 UTC
constexpr TimeMs kStart = 1704190280000;   // 10:11:20
constexpr TimeMs kEnd = 1704190320000;     // 10:12:00

void UseUtc() {
  setenv("TZ", "UTC", 1);
  tzset();
}

Job MakeJob(JobId id, std::string name, std::string owner, JobState state) {
  Job job;
  job.id = id;
  job.spec.name = std::move(name);
  job.owner = std::move(owner);
  job.state = state;
  job.submit_time = kSubmit;
  return job;
}

Job Running(JobId id) {
  Job job = MakeJob(id, "sleep", "alice", JobState::kRunning);
  job.node = "node1";
  job.attempt = 1;
  job.start_time = kStart;
  return job;
}

TEST_CASE("sge format: qstat header is 114 chars with a trailing blank, then 113 dashes") {
  const std::string header = QstatHeader();
  const std::string first =
      "job-ID  prior   name       user         state submit/start at     queue                  "
      "        slots ja-task-ID ";
  CHECK(first.size() == 114);
  CHECK(header == first + "\n" + std::string(113, '-') + "\n");
}

TEST_CASE("sge format: qstat rows, columns and state codes") {
  UseUtc();
  CHECK(QstatRow(Running(123)) ==
        "    123 0.00000 sleep      alice        r     01/02/2024 10:11:20 all.q@node1          "
        "              1        \n");

  Job pending = MakeJob(124, "snakejob.a.3.sh", "a-very-long-username", JobState::kQueued);
  pending.spec.request.cores = 4;
  const std::string row = QstatRow(pending);
  CHECK(row ==
        "    124 0.00000 snakejob.a a-very-long- qw    01/02/2024 10:11:12                      "
        "              4        \n");
  CHECK(row.size() == 111);  // 110 characters and the newline

  Job held = MakeJob(7, "h", "bob", JobState::kHeld);
  CHECK(QstatRow(held).substr(0, 46) == "      7 0.00000 h          bob          hqw   ");

  Job deleting = Running(8);
  deleting.cancel_requested = true;
  CHECK(SgeStateCode(deleting) == "dr");
  CHECK(SgeStateCode(MakeJob(1, "x", "u", JobState::kQueued)) == "qw");
  CHECK(SgeStateCode(MakeJob(1, "x", "u", JobState::kCompleted)) == "z");
  CHECK(SgeStateCode(MakeJob(1, "x", "u", JobState::kCancelled)) == "z");

  // Ids wider than 7 digits push the row, as %7d does.
  CHECK(
      QstatRow(MakeJob(12345678, "x", "u", JobState::kQueued)).starts_with("12345678 0.00000 x "));
}

TEST_CASE("sge format: qstat table is empty without jobs") {
  UseUtc();
  CHECK(QstatTable({}).empty());
  std::vector<Job> jobs = {Running(1), MakeJob(2, "b", "alice", JobState::kQueued)};
  const std::string table = QstatTable(jobs);
  CHECK(table == QstatHeader() + QstatRow(jobs[0]) + QstatRow(jobs[1]));
}

TEST_CASE("sge format: dates") {
  UseUtc();
  CHECK(FormatSgeDate(kSubmit) == "01/02/2024 10:11:12");
  CHECK(FormatCtime(kSubmit) == "Tue Jan  2 10:11:12 2024");
  CHECK(FormatCtime(1704195751000 + 10 * 86400000LL) == "Fri Jan 12 11:42:31 2024");
}

TEST_CASE("sge format: qstat -j detail") {
  UseUtc();
  Job job = Running(42);
  job.uid = 1000;
  job.gid = 100;
  job.spec.request = {2, 2048};
  job.spec.h_rt_s = 1800;
  job.spec.cwd = "/home/alice/w";
  job.spec.stdout_path = "/home/alice/w/logs/";
  job.spec.join = true;
  job.spec.env = {
      {"SGE_O_HOME", "/home/alice"}, {"SGE_O_WORKDIR", "/home/alice/w"}, {"FOO", "bar"}};
  job.spec.args = {"a", "b"};
  job.spec.project = "proj";
  job.spec.other_resources = {{"tmpdir", "<TBD>"}};
  CHECK(QstatJobDetail(job, "users") ==
        "==============================================================\n"
        "job_number:                 42\n"
        "exec_file:                  job_scripts/42\n"
        "submission_time:            Tue Jan  2 10:11:12 2024\n"
        "owner:                      alice\n"
        "uid:                        1000\n"
        "group:                      users\n"
        "gid:                        100\n"
        "sge_o_home:                 /home/alice\n"
        "sge_o_workdir:              /home/alice/w\n"
        "account:                    sge\n"
        "cwd:                        /home/alice/w\n"
        "merge:                      y\n"
        "hard resource_list:         h_rt=1800,h_vmem=1024M,tmpdir=<TBD>\n"
        "notify:                     FALSE\n"
        "job_name:                   sleep\n"
        "stdout_path_list:           NONE:NONE:/home/alice/w/logs/\n"
        "jobshare:                   0\n"
        "env_list:                   FOO=bar\n"
        "job_args:                   a,b\n"
        "project:                    proj\n"
        "usage    1:                 cpu=00:00:00, mem=0.00000 GB s, io=0.00000 GB, vmem=N/A, "
        "maxvmem=N/A\n"
        "corral_state:               running\n"
        "corral_slots:               2\n"
        "corral_mem_mb:              2048\n"
        "corral_attempt:             1\n"
        "corral_node:                node1\n"
        "corral_start_time:          Tue Jan  2 10:11:20 2024\n");

  Job binary = MakeJob(5, "true", "bob", JobState::kQueued);
  binary.spec.binary = true;
  binary.spec.args = {"/bin/true", "x"};
  const std::string text = QstatJobDetail(binary, "bob");
  CHECK(text.find("script_file:                /bin/true\n") != std::string::npos);
  CHECK(text.find("job_args:                   x\n") != std::string::npos);
  CHECK(text.find("env_list:                   \n") != std::string::npos);
  CHECK(text.find("usage") == std::string::npos);
}

TEST_CASE("sge format: jobs that do not exist") {
  const std::vector<JobId> ids = {5, 17};
  CHECK(MissingJobsMessage(ids) == "Following jobs do not exist: \n5, 17\n");
}

TEST_CASE("sge format: qdel answer lines") {
  CHECK(QdelLine({42, "deleted", "alice"}, "alice").text == "alice has deleted job 42\n");
  CHECK_FALSE(QdelLine({42, "deleted", "alice"}, "alice").error);
  OutcomeLine reg = QdelLine({43, "registered", "alice"}, "root");
  CHECK(reg.text == "root has registered the job 43 for deletion\n");
  CHECK_FALSE(reg.error);
  CHECK_FALSE(QdelLine({43, "already", "alice"}, "alice").error);
  OutcomeLine missing = QdelLine({44, "not_found", ""}, "alice");
  CHECK(missing.text == "denied: job \"44\" does not exist\n");
  CHECK(missing.error);
  OutcomeLine denied = QdelLine({45, "denied", "bob"}, "alice");
  CHECK(denied.text ==
        "alice - you do not have the necessary privileges to delete the job \"45\"\n");
  CHECK(denied.error);
  CHECK(QdelLine({46, "invalid", ""}, "alice").error);
  CHECK(QdelLine({47, "surprise", ""}, "alice").error);
}

TEST_CASE("sge format: qhold and qrls answer lines") {
  CHECK(QholdLine({42, "held", "alice"}, "alice").text == "modified hold of job 42\n");
  CHECK(QholdLine({42, "released", "alice"}, "alice").text == "modified hold of job 42\n");
  CHECK_FALSE(QholdLine({42, "already", "alice"}, "alice").error);
  OutcomeLine missing = QholdLine({9, "not_found", ""}, "alice");
  CHECK(missing.text == "denied: job \"9\" does not exist\n");
  CHECK(missing.error);
  CHECK(QholdLine({10, "denied", "bob"}, "alice").error);
  CHECK(QholdLine({11, "invalid", "alice"}, "alice").error);
}

TEST_CASE("sge format: qacct -j of a completed job") {
  UseUtc();
  Job job = Running(123);
  job.state = JobState::kCompleted;
  job.end_time = kEnd;
  job.exit_code = 0;
  job.cpu_ms = 1500;
  job.max_rss_kb = 2048;
  job.spec.request.cores = 2;
  CHECK(QacctJob(job, "users") ==
        "==============================================================\n"
        "qname        all.q               \n"
        "hostname     node1               \n"
        "group        users               \n"
        "owner        alice               \n"
        "project      NONE                \n"
        "department   defaultdepartment   \n"
        "jobname      sleep               \n"
        "jobnumber    123                 \n"
        "taskid       undefined\n"
        "account      sge                 \n"
        "priority     0                   \n"
        "qsub_time    Tue Jan  2 10:11:12 2024\n"
        "start_time   Tue Jan  2 10:11:20 2024\n"
        "end_time     Tue Jan  2 10:12:00 2024\n"
        "granted_pe   NONE                \n"
        "slots        2                   \n"
        "failed       0    \n"
        "exit_status  0                   \n"
        "ru_wallclock 40s\n"
        "ru_utime     1.500s\n"
        "ru_stime     0.000s\n"
        "ru_maxrss    2.000MB\n"
        "ru_ixrss     0.000B\n"
        "ru_ismrss    0.000B\n"
        "ru_idrss     0.000B\n"
        "ru_isrss     0.000B\n"
        "ru_minflt    0                   \n"
        "ru_majflt    0                   \n"
        "ru_nswap     0                   \n"
        "ru_inblock   0                   \n"
        "ru_oublock   0                   \n"
        "ru_msgsnd    0                   \n"
        "ru_msgrcv    0                   \n"
        "ru_nsignals  0                   \n"
        "ru_nvcsw     0                   \n"
        "ru_nivcsw    0                   \n"
        "cpu          1.500s\n"
        "mem          0.000GBs\n"
        "io           0.000GB\n"
        "iow          0.000s\n"
        "maxvmem      0.000B\n"
        "arid         undefined\n");
}

TEST_CASE("sge format: qacct exit_status and failed for failures, signals, never-ran jobs") {
  UseUtc();
  Job failed = Running(5);
  failed.state = JobState::kFailed;
  failed.end_time = kEnd;
  failed.exit_code = 3;
  std::string text = QacctJob(failed, "g");
  CHECK(text.find("\nexit_status  3                   \n") != std::string::npos);
  CHECK(text.find("\nfailed       0    \n") != std::string::npos);
  CHECK(QacctExitStatus(failed) == 3);

  Job killed = Running(6);
  killed.state = JobState::kCancelled;
  killed.end_time = kEnd;
  killed.exit_code = 137;
  killed.exit_signal = 9;
  text = QacctJob(killed, "g");
  CHECK(text.find("\nexit_status  137                 \n") != std::string::npos);
  CHECK(text.find("\nfailed       100 : assumedly after job\n") != std::string::npos);

  Job never = MakeJob(7, "n", "alice", JobState::kCancelled);
  never.end_time = kEnd;
  text = QacctJob(never, "g");
  CHECK(text.find("\nhostname     NONE                \n") != std::string::npos);
  CHECK(text.find("\nstart_time   -/-\n") != std::string::npos);
  CHECK(text.find("\nfailed       1   : assumedly before job\n") != std::string::npos);
  CHECK(text.find("\nexit_status  1                   \n") != std::string::npos);
  CHECK(text.find("\nru_wallclock 0s\n") != std::string::npos);
}

TEST_CASE("sge format: qhost table") {
  NodesReply reply;
  reply.nodes = {Node{"down1", {4, 1000}, NodeState::kUnreachable, 1000},
                 Node{"a-very-long-node-name.example.org", {16, 64000}, NodeState::kUp, 99600},
                 Node{"drained", {2, 1024}, NodeState::kUp, 100000, false}};
  reply.used = {{0, 0}, {4, 8192}, {1, 0}};
  reply.nodes[1].gpu_ids = {0, 1, 2, 3};
  reply.nodes[1].total.gpus = 4;
  reply.used[1].gpus = 2;
  reply.nodes[1].load = 3.5;
  CHECK(QhostTable(reply, 100000) ==
        "HOSTNAME                ARCH         NCPU NSOC NCOR NTHR  LOAD  MEMTOT  MEMUSE  SWAPTO  "
        "SWAPUS  GPUS   CORES STATE       SEEN\n" +
            std::string(125, '-') +
            "\n"
            "global                  -               -    -    -    -     -       -       -       "
            "-       -     -       - -           -\n"
            "a-very-long-node-name.example.org -              16    -   16   16  3.50   62.5G    "
            "8.0G     0.0     0.0   2/4    4/16 up          0.4s\n"
            "down1                   -               -    -    -    -     -       -       -       "
            "-       -     -       - unreachable 99s\n"
            "drained                 -               2    -    2    2  0.00    1.0G     0.0     "
            "0.0     0.0   0/0     1/2 draining    0.0s\n");
}

TEST_CASE("sge format: qhost -F lists each node's consumables left and its features") {
  NodesReply reply;
  reply.nodes = {Node{"n1", {4, 1000}, NodeState::kUp, 1000}};
  reply.nodes[0].total.consumables = {{"scratch_gb", 800}};
  reply.nodes[0].features = {"avx512", "bigmem"};
  reply.used = {{1, 0}};
  reply.used[0].consumables = {{"scratch_gb", 300}, {"matlab", 1}};  // matlab: cluster-wide
  const std::string text = QhostTable(reply, 1000, true);
  CHECK(text.find("\n    hc:scratch_gb=500\n    hf:avx512=TRUE\n    hf:bigmem=TRUE\n") !=
        std::string::npos);
  CHECK(text.find("matlab") == std::string::npos);
  CHECK(NodesJson(reply, 1000).find("\"features\":[\"avx512\",\"bigmem\"]") != std::string::npos);
}

TEST_CASE("sge format: every attempt is listed in qstat -j and qacct -j") {
  Job job = MakeJob(9, "n", "alice", JobState::kCompleted);
  job.attempts = {{1, "node1", kStart, kStart + 5000, "node failed: node1 became unreachable"},
                  {2, "node2", kStart + 6000, 0, ""}};
  std::vector<std::string> lines = AttemptLines(job);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "corral_attempt 1:           node=node1 start=" + FormatCtime(kStart) +
                        " end=" + FormatCtime(kStart + 5000) +
                        " reason=node failed: node1 became unreachable");
  CHECK(lines[1] == "corral_attempt 2:           node=node2 start=" +
                        FormatCtime(kStart + 6000) + " end=-");
  CHECK(QstatJobDetail(job, "g").find(lines[0] + "\n") != std::string::npos);
  CHECK(QacctJob(job, "g").find(lines[1] + "\n") != std::string::npos);
}

TEST_CASE("sge format: --json wrappers") {
  CHECK(JobsJson({}) == "{\"jobs\":[]}\n");
  std::vector<Job> jobs = {MakeJob(3, "x", "u", JobState::kQueued)};
  CHECK(JobsJson(jobs) == "{\"jobs\":[" + JobToJson(jobs[0]) + "]}\n");
  NodesReply reply;
  reply.nodes = {Node{"n1", {2, 512}, NodeState::kUp, 1500}};
  reply.used = {{1, 256}};
  CHECK(NodesJson(reply, 2000) ==
        "{\"nodes\":[{\"enabled\":true,\"features\":[],\"gpu_ids\":[],\"heartbeat_age_s\":0.5,"
        "\"last_seen\":1.5,\"load\":0.0,\"name\":\"n1\",\"reachable\":true,\"state\":\"up\","
        "\"total\":{\"consumables\":{},\"cores\":2,\"gpus\":0,\"mem_mb\":512},"
        "\"used\":{\"consumables\":{},\"cores\":1,\"gpus\":0,\"mem_mb\":256}}]}\n");
}

}  // namespace
}  // namespace corral
