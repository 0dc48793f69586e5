// Fuzzes the store's binary job records (scheduler/stored_job.h): what Store::Load reads
// from the `record` column of a database that may have been damaged or edited by hand.
// Arbitrary bytes go to DecodeStoredJob; a record it accepts must be a job the encoder
// could have written: its re-encoding decodes to the same job, and encoding is stable
// (Encode(Decode(Encode(job))) == Encode(job)). A job that decodes but cannot round-trip
// would be a record that changes on the next write. Any crash, sanitizer report or failed
// check is a finding. Seeds (corpus/stored_job/) are encodings of real jobs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "scheduler/stored_job.h"

namespace {

void Check(bool ok, const char* what, std::string_view bytes) {
  if (ok) return;
  std::fprintf(stderr, "stored_job_fuzzer: %s (input of %zu bytes)\n", what, bytes.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Result<Job> job = DecodeStoredJob(bytes);
  if (!job) {
    Check(!job.error().message().empty(), "a refused record has no reason", bytes);
    return 0;
  }
  Check(IsStoredJob(bytes), "a record that is not a stored job decoded", bytes);
  const std::string again = EncodeStoredJob(*job);
  Result<Job> back = DecodeStoredJob(again);
  Check(back.has_value(), "the re-encoding of a decoded record does not decode", bytes);
  Check(*back == *job, "a decoded record does not round-trip", bytes);
  Check(EncodeStoredJob(*back) == again, "encoding is not stable", bytes);
  return 0;
}
