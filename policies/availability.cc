// The availability step function. Steps are few per node (one per running job's end and
// per reservation edge), so a sorted vector with linear scans beats a tree here.
#include "policies/availability.h"

#include <algorithm>

namespace corral::planning {
namespace {

int64_t At(const std::vector<int64_t>& v, size_t i) { return i < v.size() ? v[i] : 0; }

}  // namespace

bool Amounts::Covers(const Amounts& need) const {
  if (need.cores > cores || need.mem_mb > mem_mb || need.gpus > gpus) return false;
  for (size_t i = 0; i < need.extra.size(); ++i) {
    if (need.extra[i] > At(extra, i)) return false;
  }
  return true;
}

bool Amounts::IsZero() const {
  return cores <= 0 && mem_mb <= 0 && gpus <= 0 &&
         std::all_of(extra.begin(), extra.end(), [](int64_t x) { return x <= 0; });
}

bool ToAmounts(const std::map<std::string, int64_t>& counts, const NameTable& table, Amounts& out,
               std::string* unknown) {
  for (const auto& [name, n] : counts) {
    auto it = table.find(name);
    if (it == table.end()) {
      if (n > 0 && unknown) {
        *unknown = name;
        return false;
      }
      continue;
    }
    if (out.extra.size() <= it->second) out.extra.resize(it->second + 1, 0);
    out.extra[it->second] = n;
  }
  return true;
}

bool ToAmounts(const Resources& r, const NameTable& table, Amounts& out, std::string* unknown) {
  out.cores = r.cores;
  out.mem_mb = r.mem_mb;
  out.gpus = r.gpus;
  return ToAmounts(r.consumables, table, out, unknown);
}

bool Amounts::IsNothing() const {
  return cores == 0 && mem_mb == 0 && gpus == 0 &&
         std::all_of(extra.begin(), extra.end(), [](int64_t x) { return x == 0; });
}

void Amounts::Add(const Amounts& o) {
  cores += o.cores;
  mem_mb += o.mem_mb;
  gpus += o.gpus;
  if (extra.size() < o.extra.size()) extra.resize(o.extra.size(), 0);
  for (size_t i = 0; i < o.extra.size(); ++i) extra[i] += o.extra[i];
}

void Amounts::Sub(const Amounts& o) {
  cores -= o.cores;
  mem_mb -= o.mem_mb;
  gpus -= o.gpus;
  if (extra.size() < o.extra.size()) extra.resize(o.extra.size(), 0);
  for (size_t i = 0; i < o.extra.size(); ++i) extra[i] -= o.extra[i];
}

TimeMs EndOf(TimeMs start, int64_t duration_ms) {
  if (start == kNever || duration_ms == kNever) return kNever;
  if (duration_ms > 0 && start > kNever - duration_ms) return kNever;  // (start may be < 0)
  return start + duration_ms;
}

Availability::Availability(TimeMs now, Amounts free_now) {
  steps_.push_back({now, std::move(free_now)});
}

Availability::Availability(TimeMs now, Amounts free_now, std::vector<Freed>& releases) {
  std::sort(releases.begin(), releases.end(),
            [](const Freed& a, const Freed& b) { return a.at < b.at; });
  steps_.push_back({now, std::move(free_now)});
  for (const Freed& r : releases) {
    if (r.at == kNever) break;  // sorted: the rest never come back either
    if (r.amount->IsNothing()) continue;
    if (r.at > steps_.back().t) steps_.push_back({r.at, steps_.back().free});
    steps_.back().free.Add(*r.amount);  // (an end at or before now counts from now, as in Release)
  }
}

size_t Availability::IndexAt(TimeMs t) const {
  auto it = std::upper_bound(steps_.begin(), steps_.end(), t,
                             [](TimeMs x, const Step& s) { return x < s.t; });
  return it == steps_.begin() ? 0 : static_cast<size_t>(it - steps_.begin()) - 1;
}

size_t Availability::Split(TimeMs t) {
  const size_t i = IndexAt(t);
  if (steps_[i].t == t || t < steps_[i].t) return i;
  steps_.insert(steps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, Step{t, steps_[i].free});
  return i + 1;
}

void Availability::Release(TimeMs at, const Amounts& amount) {
  if (at == kNever) return;
  for (size_t i = Split(std::max(at, steps_.front().t)); i < steps_.size(); ++i) {
    steps_[i].free.Add(amount);
  }
}

void Availability::Take(const Amounts& need, TimeMs from, TimeMs to) {
  if (to <= from) return;
  const size_t begin = Split(std::max(from, steps_.front().t));
  const size_t end = to == kNever ? steps_.size() : Split(to);
  for (size_t i = begin; i < end; ++i) steps_[i].free.Sub(need);
}

bool Availability::FitsDuring(const Amounts& need, TimeMs from, TimeMs to) const {
  const size_t first = IndexAt(from);
  for (size_t i = first; i < steps_.size() && (i == first || steps_[i].t < to); ++i) {
    if (!steps_[i].free.Covers(need)) return false;
  }
  return true;
}

TimeMs Availability::EarliestFit(const Amounts& need, int64_t duration_ms, TimeMs from,
                                 TimeMs before) const {
  size_t i = IndexAt(from);
  TimeMs t = std::max(from, steps_.front().t);
  while (t < before) {
    const TimeMs end = EndOf(t, duration_ms);
    size_t j = i;
    bool fits = true;
    for (; j < steps_.size() && (j == i || steps_[j].t < end); ++j) {
      if (!steps_[j].free.Covers(need)) {
        fits = false;
        break;
      }
    }
    if (fits) return t;
    // Any start before step j ends overlaps step j; the next candidate is the step after it.
    if (j + 1 >= steps_.size()) return kNever;
    i = j + 1;
    t = steps_[i].t;
  }
  return kNever;
}

}  // namespace corral::planning
