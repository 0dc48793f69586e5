// Job listings (qstat, qacct, qwait, ...): which records a QueryRequest selects, one page
// at a time, with work proportional to the page rather than to the cluster. Pure, like
// the rest of the core.
#pragma once

#include "common/protocol.h"
#include "scheduler/core.h"

namespace corral {

// The records `req` selects that `caller` may see, in (job id, task) order, an array's own
// record before its dispatched tasks; without scripts, with waiting reasons (and, for
// listed ids, the planner's forecast) filled in.
//
// Paging (req.limit > 0): the page starts after req.after and stops after req.limit
// records, once the records hold about kQueryPageBytes, or once QueryScanBudget() units
// have been examined (so that a page costs the scheduler a bounded time even when few
// units match); reply.next is then the key of the last unit examined. Because a page
// resumes strictly after a key and keys never change, a job that exists across all pages
// is listed once, in the state it had when its page was built; jobs submitted meanwhile
// (higher ids) appear on later pages.
//
// Unpaged (limit 0): everything at once; `ids` are answered in their given order. More
// than kMaxUnpagedRecords records: FailedPrecondition, naming the fix.
// Unknown names in req.states: InvalidArgument.
Result<QueryReply> ListJobs(const ClusterState& state, const QueryRequest& req,
                            const Caller& caller, const CoreConfig& config, TimeMs now);

// Units a page may examine at most: a multiple of its record limit.
int64_t QueryScanBudget(int64_t limit);

// About how many bytes the wire form of `job` takes (protocol.cc's encoding, without a
// script): what a page counts against kQueryPageBytes.
size_t ApproxRecordBytes(const Job& job);

// Adds a new job record's id to state.by_owner (Install's fresh records, Reindex).
void IndexOwner(ClusterState& state, const Job& job);

}  // namespace corral
