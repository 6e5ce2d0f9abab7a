#include <cstdio>
#include <queue>

#include "core/check.h"
#include "text/pipeline.h"
#include "text/unicode.h"

namespace mmembed::text::detail {

Bpe::Bpe(BpeConfig config, const std::string& origin) : config_(std::move(config)) {
  const std::size_t prefix_len = config_.continuing_subword_prefix.size();
  merges_.reserve(config_.merges.size());
  for (std::size_t rank = 0; rank < config_.merges.size(); ++rank) {
    const auto& [a, b] = config_.merges[rank];
    auto ia = vocab_find(config_.vocab, a);
    auto ib = vocab_find(config_.vocab, b);
    MMEMBED_CHECK(ia && ib, FormatError, origin, ": merge ", rank, " ('", a, "' '", b,
                  "') names a token that is not in the vocabulary");
    std::string merged = a;
    if (prefix_len > 0 && b.compare(0, prefix_len, config_.continuing_subword_prefix) == 0) {
      merged.append(b, prefix_len, std::string::npos);
    } else {
      merged += b;
    }
    auto inew = vocab_find(config_.vocab, merged);
    MMEMBED_CHECK(inew, FormatError, origin, ": merge ", rank, " ('", a, "' '", b,
                  "'): the merged token '", merged, "' is not in the vocabulary");
    // A repeated pair keeps its last rank, as tokenizers' map build does.
    merges_[pair_key(*ia, *ib)] = MergeValue{static_cast<std::int32_t>(rank), *inew};
  }
  if (config_.unk_token) {
    unk_id_ = vocab_find(config_.vocab, *config_.unk_token);
    MMEMBED_CHECK(unk_id_, FormatError, origin, ": BPE unk_token '", *config_.unk_token,
                  "' is not in the vocabulary");
  }
  if (config_.byte_fallback) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_fallback_ids_[b] = vocab_find(config_.vocab, name).value_or(-1);
    }
  }
}

namespace {

struct Symbol {
  std::int32_t id;
  std::int32_t prev;
  std::int32_t next;
  std::size_t len;  // bytes of the word covered; 0 = merged away
};

struct Merge {
  std::int32_t pos;
  std::int32_t rank;
  std::int32_t new_id;
};

// Lowest rank first, then leftmost position (tokenizers' Merge ordering).
struct MergeAfter {
  bool operator()(const Merge& x, const Merge& y) const {
    if (x.rank != y.rank) return x.rank > y.rank;
    return x.pos > y.pos;
  }
};

}  // namespace

void Bpe::merge_word(std::string_view word, std::vector<std::int32_t>& ids) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](std::int32_t id, std::size_t len) {
    const auto n = static_cast<std::int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, len});
  };
  // Pending unknown symbol (id, byte length), fused with the next ones when fuse_unk.
  bool have_unk = false;
  std::int32_t unk_id = 0;
  std::size_t unk_len = 0;
  std::string s;
  for (std::size_t i = 0; i < word.size();) {
    const std::size_t start = i;
    i += unicode::char_len(static_cast<unsigned char>(word[i]));
    const std::size_t byte_len = i - start;
    s.clear();
    if (start > 0) s += config_.continuing_subword_prefix;
    s.append(word.substr(start, byte_len));
    if (i >= word.size()) s += config_.end_of_word_suffix;

    if (auto id = vocab_find(config_.vocab, s)) {
      if (have_unk) {
        add(unk_id, unk_len);
        have_unk = false;
      }
      add(*id, byte_len);
      continue;
    }
    if (config_.byte_fallback) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : s) add(byte_fallback_ids_[b], 1);
        continue;
      }
    }
    if (unk_id_) {
      if (have_unk && config_.fuse_unk) {
        unk_len += byte_len;
      } else {
        if (have_unk) add(unk_id, unk_len);
        have_unk = true;
        unk_id = *unk_id_;
        unk_len = byte_len;
      }
    }
  }
  if (have_unk) add(unk_id, unk_len);

  std::priority_queue<Merge, std::vector<Merge>, MergeAfter> queue;
  for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
    auto it = merges_.find(pair_key(symbols[k].id, symbols[k + 1].id));
    if (it != merges_.end())
      queue.push(Merge{static_cast<std::int32_t>(k), it->second.rank, it->second.new_id});
  }
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const std::int32_t next_pos = cur.next;
    const Symbol right = symbols[next_pos];
    auto it = merges_.find(pair_key(cur.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry

    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[next_pos].len = 0;
    if (right.next > -1 && static_cast<std::size_t>(right.next) < symbols.size())
      symbols[right.next].prev = top.pos;

    if (cur.prev >= 0) {
      auto p = merges_.find(pair_key(symbols[cur.prev].id, cur.id));
      if (p != merges_.end()) queue.push(Merge{cur.prev, p->second.rank, p->second.new_id});
    }
    if (cur.next >= 0) {
      auto n = merges_.find(pair_key(cur.id, symbols[cur.next].id));
      if (n != merges_.end()) queue.push(Merge{top.pos, n->second.rank, n->second.new_id});
    }
  }
  for (const Symbol& sym : symbols)
    if (sym.len != 0) ids.push_back(sym.id);
}

void Bpe::tokenize(std::string_view word, std::vector<std::int64_t>& out) const {
  if (word.empty()) return;
  if (config_.ignore_merges) {
    if (auto id = vocab_find(config_.vocab, word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  CacheShard* shard = nullptr;
  if (cacheable) {
    shard = &cache_[StringHash{}(word) % kShards];
    std::lock_guard<std::mutex> lock(shard->mutex);
    auto it = shard->map.find(word);
    if (it != shard->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard->mutex);
    if (shard->map.size() < kShardCapacity) shard->map.emplace(std::string(word), std::move(ids));
  }
}

}  // namespace mmembed::text::detail
