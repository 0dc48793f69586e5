// The spool's files: paths, the key=value formats of shepherd.pid / job.pgid / exit, atomic
// writes, and process identity from /proc. The shepherd calls these after fork, so they use
// plain system calls and no locks besides malloc's (which glibc makes safe across fork).
#include "execd/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

namespace corral {
namespace {

std::string Errno(int err) { return std::strerror(err); }

std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Unescape(std::string_view value) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) {
      out += value[i + 1] == 'n' ? '\n' : value[i + 1];
      ++i;
    } else {
      out += value[i];
    }
  }
  return out;
}

// "key=value" lines into a map; InvalidArgument names the first line without '='.
Result<std::map<std::string, std::string, std::less<>>> ParseLines(std::string_view text) {
  std::map<std::string, std::string, std::less<>> out;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Error(Code::kInvalidArgument, "line " + std::to_string(line_no) + ": no '='");
    }
    out[std::string(line.substr(0, eq))] = Unescape(line.substr(eq + 1));
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

// The number under `key`, if present; false when present but not a number.
template <typename T>
bool Field(const std::map<std::string, std::string, std::less<>>& fields, std::string_view key,
           T& out) {
  const auto it = fields.find(key);
  return it == fields.end() || ParseNumber(it->second, out);
}

// Empties the directory open as `fd` (taken over and closed), depth first. False if
// something could not be removed.
bool RemoveContents(int fd) {
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return false;
  }
  // The names first: removing entries while reading the directory may skip some.
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  bool ok = true;
  const int at = dirfd(dir);
  for (const std::string& name : names) {
    if (unlinkat(at, name.c_str(), 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR) {
      ok = false;
      continue;
    }
    // A directory, when unlinkat looked; O_NOFOLLOW | O_DIRECTORY fails on whatever was put
    // there since unless it is still a directory, which is then what gets emptied.
    const int sub = openat(at, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      // Swapped for a symlink or a file meanwhile: remove that instead.
      ok = unlinkat(at, name.c_str(), 0) == 0 && ok;
      continue;
    }
    ok = RemoveContents(sub) && ok;
    if (unlinkat(at, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) ok = false;
  }
  closedir(dir);
  return ok;
}

std::string ReadBootId() {
  Result<std::string> id = ReadSmallFile("/proc/sys/kernel/random/boot_id");
  if (!id) return "";
  while (!id->empty() && id->back() == '\n') id->pop_back();
  return *id;
}

}  // namespace

const std::string& BootId() {
  static const std::string id = ReadBootId();
  return id;
}

// Declared in launcher.h; defined here, with the spool's other names, so that the spawner
// (which links the spool but not the launcher) has it.
std::string AttemptName(const AttemptKey& key) {
  const std::string task = key.task == 0 ? "" : std::to_string(key.task) + ".";
  return std::to_string(key.job_id) + "." + task + std::to_string(key.attempt);
}

AttemptPaths PathsOf(const std::string& spool_dir, const AttemptKey& key) {
  const std::string dir = spool_dir + "/jobs/" + AttemptName(key);
  return {dir,          dir + "/script", dir + "/tmp", dir + "/shepherd.pid", dir + "/job.pgid",
          dir + "/exit"};
}

std::optional<AttemptKey> ParseAttemptName(std::string_view name) {
  // "ID.ATTEMPT", or "ID.TASK.ATTEMPT" for an array task.
  const size_t dot = name.find('.');
  const size_t last = name.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  AttemptKey key;
  if (!ParseNumber(name.substr(0, dot), key.job_id) ||
      !ParseNumber(name.substr(last + 1), key.attempt) || key.job_id <= 0 || key.attempt <= 0) {
    return std::nullopt;
  }
  if (last != dot && (!ParseNumber(name.substr(dot + 1, last - dot - 1), key.task) || key.task <= 0)) {
    return std::nullopt;
  }
  if (AttemptName(key) != name) return std::nullopt;  // no "007.1": one attempt, one name
  return key;
}

Result<std::vector<AttemptKey>> ListAttempts(const std::string& spool_dir) {
  const std::string jobs = spool_dir + "/jobs";
  DIR* dir = opendir(jobs.c_str());
  if (dir == nullptr) return Error(Code::kInternal, "cannot list " + jobs + ": " + Errno(errno));
  std::vector<AttemptKey> keys;
  while (const dirent* entry = readdir(dir)) {
    if (std::optional<AttemptKey> key = ParseAttemptName(entry->d_name)) keys.push_back(*key);
  }
  closedir(dir);
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::string FormatProcessId(const ProcessId& id) {
  return "pid=" + std::to_string(id.pid) + "\nstart_ticks=" + std::to_string(id.start_ticks) +
         "\nboot_id=" + Escape(id.boot_id) + "\n";
}

Result<ProcessId> ParseProcessId(std::string_view text) {
  auto fields = ParseLines(text);
  if (!fields) return std::unexpected(fields.error());
  ProcessId id;
  if (!fields->contains("pid") || !Field(*fields, "pid", id.pid) || id.pid <= 0) {
    return Error(Code::kInvalidArgument, "no valid pid= line");
  }
  if (!Field(*fields, "start_ticks", id.start_ticks)) {
    return Error(Code::kInvalidArgument, "start_ticks= is not a number");
  }
  if (const auto it = fields->find("boot_id"); it != fields->end()) id.boot_id = it->second;
  return id;
}

Result<ProcessId> IdentifyProcess(pid_t pid) {
  Result<std::string> stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return Error(Code::kNotFound, "no process " + std::to_string(pid));
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
  const size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return Error(Code::kInternal, "unreadable /proc stat");
  std::string_view rest = std::string_view(*stat).substr(paren + 1);
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find(' ');
    fields.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  ProcessId id{pid, 0, BootId()};
  if (fields.size() < 20 || !ParseNumber(fields[19], id.start_ticks)) {
    return Error(Code::kInternal, "unreadable /proc stat");
  }
  if (fields[0] == "Z" || fields[0] == "X") {
    return Error(Code::kNotFound, "process " + std::to_string(pid) + " has exited");
  }
  return id;
}

bool StillRunning(const ProcessId& recorded) {
  Result<ProcessId> now = IdentifyProcess(recorded.pid);
  return now.has_value() && *now == recorded;
}

std::string FormatExitFile(const AttemptEnd& end) {
  return "exit_code=" + std::to_string(end.exit_code) + "\nsignal=" + std::to_string(end.signal) +
         "\nstart_time=" + std::to_string(end.start_time) +
         "\nend_time=" + std::to_string(end.end_time) + "\ncpu_ms=" + std::to_string(end.cpu_ms) +
         "\nmax_rss_kb=" + std::to_string(end.max_rss_kb) + "\nfailure=" + Escape(end.failure) +
         "\nreason=" + Escape(end.reason) + "\n";
}

Result<AttemptEnd> ParseExitFile(std::string_view text, const AttemptKey& key) {
  auto fields = ParseLines(text);
  if (!fields) return std::unexpected(fields.error());
  AttemptEnd end;
  end.key = key;
  if (!fields->contains("exit_code")) return Error(Code::kInvalidArgument, "no exit_code= line");
  const std::pair<std::string_view, int64_t*> numbers[] = {{"start_time", &end.start_time},
                                                           {"end_time", &end.end_time},
                                                           {"cpu_ms", &end.cpu_ms},
                                                           {"max_rss_kb", &end.max_rss_kb}};
  if (!Field(*fields, "exit_code", end.exit_code) || !Field(*fields, "signal", end.signal)) {
    return Error(Code::kInvalidArgument, "exit_code= or signal= is not a number");
  }
  for (const auto& [name, target] : numbers) {
    if (!Field(*fields, name, *target)) {
      return Error(Code::kInvalidArgument, std::string(name) + "= is not a number");
    }
  }
  if (const auto it = fields->find("failure"); it != fields->end()) end.failure = it->second;
  if (const auto it = fields->find("reason"); it != fields->end()) end.reason = it->second;
  return end;
}

Status WriteAll(int fd, std::string_view text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error(Code::kInternal, "cannot write " + path + ": " + Errno(errno));
    done += static_cast<size_t>(n);
  }
  return OkStatus();
}

Status WriteFileAtomically(const std::string& path, std::string_view text, bool durable) {
  const std::string tmp = path + ".tmp";
  // 0600: what the shepherd records is the execd's business, not other users' jobs'.
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Error(Code::kInternal, "cannot create " + tmp + ": " + Errno(errno));
  if (Status s = WriteAll(fd, text, tmp); !s.ok()) {
    close(fd);
    return s;
  }
  if (durable && fsync(fd) != 0) {
    const int err = errno;
    close(fd);
    return Error(Code::kInternal, "cannot fsync " + tmp + ": " + Errno(err));
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(Code::kInternal, "cannot rename " + tmp + ": " + Errno(errno));
  }
  if (durable) {
    // The rename itself must survive a crash, or a reboot could bring back "no exit file".
    const std::string dir = path.substr(0, path.rfind('/'));
    const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
      fsync(dir_fd);
      close(dir_fd);
    }
  }
  return OkStatus();
}

Result<std::string> ReadSmallFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(errno == ENOENT ? Code::kNotFound : Code::kInternal,
                 "cannot open " + path + ": " + Errno(errno));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Error(Code::kInternal, "cannot read " + path + ": " + Errno(err));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

Status RemoveTree(const std::string& path) {
  if (unlink(path.c_str()) == 0 || errno == ENOENT) return OkStatus();
  if (errno == EISDIR) {
    const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const bool emptied = fd >= 0 && RemoveContents(fd);
    if (rmdir(path.c_str()) == 0 || errno == ENOENT) return OkStatus();
    if (!emptied) return Error(Code::kInternal, "cannot remove everything below " + path);
  }
  return Error(Code::kInternal, "cannot remove " + path + ": " + Errno(errno));
}

}  // namespace corral
