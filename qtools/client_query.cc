// Client::QueryPages / Client::Query: job listings page by page (protocol.h, QueryRequest).
#include "qtools/client.h"

namespace corral {

Status Client::QueryPages(QueryRequest query, int64_t timeout_ms,
                          const std::function<Status(QueryReply&)>& on_page) {
  if (query.limit <= 0) query.limit = kQueryPageRecords;
  while (true) {
    Result<Message> reply = Call(query, timeout_ms);
    if (!reply) return reply.error();
    auto* page = std::get_if<QueryReply>(&*reply);
    if (page == nullptr) return Status(Code::kInternal, "unexpected reply to a query");
    // A scheduler that does not page answers everything at once, without `next`.
    std::optional<UnitKey> next = page->next;
    if (next && query.after && !(*query.after < *next)) {
      return Status(Code::kInternal, "the scheduler's page cursor did not advance");
    }
    if (Status s = on_page(*page); !s.ok()) return s;
    if (!next) return Status();
    query.after = next;
  }
}

Result<QueryReply> Client::Query(const QueryRequest& query, int64_t timeout_ms) {
  QueryReply all;
  Status s = QueryPages(query, timeout_ms, [&](QueryReply& page) {
    if (all.jobs.empty()) {
      all.jobs = std::move(page.jobs);
    } else {
      all.jobs.insert(all.jobs.end(), std::make_move_iterator(page.jobs.begin()),
                      std::make_move_iterator(page.jobs.end()));
    }
    all.missing.insert(all.missing.end(), page.missing.begin(), page.missing.end());
    return Status();
  });
  if (!s.ok()) return std::unexpected(s);
  return all;
}

}  // namespace corral
