// The compact binary form of a Job that the store keeps in its `record` column (a BLOB).
// It replaced the JSON record (common/protocol.h EncodeJobRecord, still what StartJob
// carries to execds) in the store because decoding a million JSON records was most of a
// restart (docs/performance.md). Not a wire format: only store.cc reads and writes it.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/types.h"

namespace corral {

// Every field of `job`, exactly: Decode(Encode(job)) == job.
std::string EncodeStoredJob(const Job& job);

// The job in `bytes`, or InvalidArgument naming the field that is truncated, out of
// range or not what it must be (a corrupt record is reported, never loaded as garbage).
// The ranges are those DecodeJobRecord enforces on the JSON form. Never throws.
Result<Job> DecodeStoredJob(std::string_view bytes);

// True when `bytes` starts as EncodeStoredJob's output does (a JSON record starts with '{').
bool IsStoredJob(std::string_view bytes);

}  // namespace corral
