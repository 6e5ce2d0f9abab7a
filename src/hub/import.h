// Putting a local model folder into the Hugging Face cache as a snapshot that huggingface_hub,
// transformers, sentence-transformers and `--model org/name` then find (`mmembed models import`).
//
//   hub::ImportOptions o;
//   o.cache_dir = hub::read_hub_config(hub::process_env()).cache_dir;
//   hub::ImportResult r = hub::import_model_folder("my-model", "me/my-model", o);
//   // r.snapshot == <cache>/models--me--my-model/snapshots/<r.commit>; refs/main holds r.commit
//
// What is written (the layout hf_hub_download writes; docs/hub.md):
//   blobs/<blob>               each file's content, once; <blob> is what the Hub calls the file's
//                              ETag: the SHA-256 of the content for a file the Hub stores in LFS
//                              (is_lfs_file), else its git blob id (SHA-1 of "blob <size>\0" +
//                              content), so a later download of the same file from the Hub finds
//                              the blob already there
//   snapshots/<commit>/<path>  a relative symlink to ../../blobs/<blob> (one more ../ per
//                              subfolder), or a copy of the blob with ImportOptions::copy
//   refs/<revision>            <commit>, 40 hex, no newline
// <commit> is the git tree id of the imported files, all with mode 100644: what
// `git add -A && git write-tree` prints in a fresh git repository holding exactly those files.
// It is deterministic (the same files give the same snapshot, whatever the folder, the time or the
// revision), 40 lowercase hex like a commit, and is not a commit that exists on the Hub.
//
// Which files: every regular file under DIR, recursively, except what huggingface_hub's
// upload_folder leaves out by default (any `.git` entry and `.cache/huggingface` folder).
// Refused, with an error naming the path, before anything is written: FIFOs, sockets and
// devices; symlinks whose target is outside DIR, missing, or a folder (a symlink to a regular
// file inside DIR is imported as that file's content); more than max_files files; an empty DIR.
// Files are read in 1 MiB pieces, twice (hash, then copy of the blobs that are new); a file that
// changes between the two reads is an error.
//
// Atomic: the snapshot is built in a temporary folder beside snapshots/ and renamed into place,
// then refs/<revision> is replaced atomically; on any failure the temporary folder and the blobs
// this call created are removed, so the snapshot appears complete or not at all. Blobs are
// written through a temporary file and renamed. Imports of one repository are serialised by
// <cache>/.locks/models--org--name/mmembed-import.lock.
//
// Existing state: importing the same files again changes nothing (ImportResult::created false).
// Refused unless options.force: refs/<revision> already names another snapshot (with force the
// ref moves; the other snapshot stays in the cache), snapshots/<commit> exists with other
// content (with force it is replaced), or a blob of the right name has the wrong size (with force
// it is rewritten). Existing blobs of the right size are kept as they are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mmembed::hub {

namespace fs = std::filesystem;

inline constexpr std::size_t kMaxImportFiles = 100'000;

struct ImportOptions {
  fs::path cache_dir;             // the hub cache ($HF_HUB_CACHE); required
  std::string revision = "main";  // the branch or tag name written to refs/
  bool force = false;
  bool copy = false;              // copies in snapshots/ instead of symlinks
  std::size_t max_files = kMaxImportFiles;
};

struct ImportedFile {
  std::string path;   // in the repository, "/"-separated
  std::string blob;   // blobs/<blob>
  std::uint64_t size = 0;
  bool lfs = false;       // named by SHA-256 (else git blob id)
  bool new_blob = false;  // written by this call (else it was already in the cache)
};

struct ImportResult {
  std::string repo_id;
  std::string revision;
  std::string commit;
  fs::path repo_path;  // <cache>/models--org--name
  fs::path snapshot;   // <cache>/models--org--name/snapshots/<commit>
  std::vector<ImportedFile> files;  // sorted by path
  std::uint64_t bytes = 0;          // sum of the file sizes
  bool created = false;     // the snapshot was written (false: it was already there, the same)
  bool replaced = false;    // an existing, different snapshots/<commit> was replaced (force)
  bool ref_changed = false;      // refs/<revision> was written
  std::string previous_commit;   // what refs/<revision> held before, when it differed
};

ImportResult import_model_folder(const fs::path& dir, const std::string& repo_id,
                                 const ImportOptions& options);

// Whether the Hub would keep `path` (a repository path) in LFS, by the rule mmembed uses to name
// blobs: the file name matches a pattern of the .gitattributes the Hub gives new model
// repositories (*.safetensors, *.bin, *.pt, *.pth, *.ckpt, *.h5, *.onnx, *.msgpack, *.model,
// *.npy, *.npz, *.zip, *.tar, *.gz, ... , *.bin.*, *.tar.*, *.lfs.*, *tfevents*,
// saved_model/**/*), or the file is 10 MiB or larger, or `head` (its first 512 bytes: the sample
// huggingface_hub sends to the Hub before an upload) holds a NUL byte.
bool is_lfs_file(std::string_view path, std::uint64_t size, std::string_view head);

// The git blob id of `content` (for tests and small files).
std::string git_blob_id(std::string_view content);

// The git tree id of files given as (repository path, 40-hex git blob id), all mode 100644.
struct TreeEntry {
  std::string path;
  std::string blob_id;
};
std::string git_tree_id(std::vector<TreeEntry> files);

}  // namespace mmembed::hub
