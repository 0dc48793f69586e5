// Text and JSON of the policy's answers for people: qstat -pri's ranking, qshare's share
// tree, qconf -audit's log. Grid Engine has no byte-exact format for these (its qstat -pri
// shows urgency and tickets Corral does not have), so they are plain tables with the
// explanation in words beside the numbers.
#pragma once

#include <string>

#include "common/protocol.h"

namespace corral {

// job-ID rank priority and each normalized factor, then name and owner; one line per
// pending unit, rank order. "" when there is none.
std::string PriorityTable(const PriorityReply& reply);

// The Fair Tree, best served first: group, user, shares, usage in core-hours, shares and
// usage as fractions, levels, rank and factor; with `explain`, each row in words below.
std::string ShareTable(const ShareReply& reply, bool explain);

// "TIME USER ACTION DETAIL" lines, oldest first.
std::string AuditTable(const AuditReply& reply);

// A reply as the documented JSON object: the wire body without "v", "type" and "req".
std::string ReplyJson(const Message& reply);

// A duration in seconds as "7d", "12h", "90m", "45s" (the largest whole unit).
std::string DurationText(int64_t seconds);

}  // namespace corral
