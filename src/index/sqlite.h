// Internal to the index layer: a thin RAII layer over SQLite's C API. Every failure throws an
// mmembed error naming the database file and SQLite's reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace mmembed::index {

class Statement;

class Database {
 public:
  // Opens `path` read-only or read-write (creating it when `create`), in serialized mode (one
  // connection may be used from several threads), with a busy timeout so that a reader waits
  // for a writer's commit instead of failing.
  static Database open(const std::string& path, bool writable, bool create);
  Database() = default;  // closed; open() gives a usable one
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  void exec(const std::string& sql);
  Statement prepare(std::string_view sql) const;
  std::int64_t changes() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }
  [[noreturn]] void fail(const std::string& what, int rc) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A prepared statement: bind (1-based, as SQLite), then step() until it returns false.
class Statement {
 public:
  Statement(const Database& db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, const std::string& v);
  Statement& bind(int i, std::string_view v);
  Statement& bind_null(int i);
  // Text, or NULL for an empty string (optional columns).
  Statement& bind_text_or_null(int i, const std::string& v);
  // True while a row is available; false when done.
  bool step();
  void reset();
  std::int64_t column_int(int i) const;
  std::string column_text(int i) const;  // "" for NULL
  bool column_is_null(int i) const;

 private:
  const Database* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back when destroyed without commit().
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace mmembed::index
