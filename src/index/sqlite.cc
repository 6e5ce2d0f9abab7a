#include "index/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "core/check.h"

namespace mmembed::index {

Database Database::open(const std::string& path, bool writable, bool create) {
  Database d;
  d.path_ = path;
  auto try_open = [&](bool read_write) {
    if (d.db_) sqlite3_close_v2(d.db_), d.db_ = nullptr;
    const int flags = (read_write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) |
                      (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX |
                      SQLITE_OPEN_NOFOLLOW;
    return sqlite3_open_v2(path.c_str(), &d.db_, flags, nullptr);
  };
  // A reader opens read-write where it may (and then refuses every write with query_only): a
  // writer killed inside a transaction leaves a hot journal, which only a connection that can
  // write may roll back. Where the file cannot be written (read-only media), it reads as is.
  int rc = try_open(true);
  if (rc != SQLITE_OK && !writable) rc = try_open(false);
  if (rc != SQLITE_OK) d.fail("cannot open the database", rc);
  sqlite3_extended_result_codes(d.db_, 1);
  sqlite3_busy_timeout(d.db_, 10000);
  if (!writable) d.exec("PRAGMA query_only = 1");
  return d;
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

void Database::fail(const std::string& what, int rc) const {
  const std::string reason = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  const int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    throw FormatError(str_cat(path_, ": ", what, " (", reason,
                              "): not an mmembed index database"
                              " or a damaged one"));
  }
  throw IoError(str_cat(path_, ": ", what, " (", reason, ")"));
}

void Database::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string reason = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
      throw FormatError(str_cat(path_, ": ", reason,
                                ": not an mmembed index database or a "
                                "damaged one"));
    }
    throw IoError(str_cat(path_, ": ", reason));
  }
}

Statement Database::prepare(std::string_view sql) const {
  return Statement(*this, sql);
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(db_);
}

Statement::Statement(const Database& db, std::string_view sql) : db_(&db) {
  const int rc =
      sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) db.fail(str_cat("cannot prepare '", sql, "'"), rc);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int i, std::int64_t v) {
  const int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK) db_->fail("cannot bind a value", rc);
  return *this;
}

Statement& Statement::bind(int i, std::string_view v) {
  const int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) db_->fail("cannot bind a value", rc);
  return *this;
}

Statement& Statement::bind(int i, const std::string& v) {
  return bind(i, std::string_view(v));
}

Statement& Statement::bind_null(int i) {
  const int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK) db_->fail("cannot bind a value", rc);
  return *this;
}

Statement& Statement::bind_text_or_null(int i, const std::string& v) {
  return v.empty() ? bind_null(i) : bind(i, v);
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_->fail("query failed", rc);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::column_int(int i) const {
  return sqlite3_column_int64(stmt_, i);
}

std::string Statement::column_text(int i) const {
  const unsigned char* t = sqlite3_column_text(stmt_, i);
  if (!t) return {};
  return std::string(reinterpret_cast<const char*>(t),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
}

bool Statement::column_is_null(int i) const {
  return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace mmembed::index
