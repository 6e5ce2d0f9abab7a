#include "io/torch_pickle.h"

#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "core/check.h"
#include "core/file.h"

namespace mmembed::io {

bool PickledTensor::contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

namespace {

// The globals a state dict may reference. Anything else is refused by name.
enum class Global {
  OrderedDict,
  RebuildTensorV2,
  RebuildTensor,
  RebuildParameter,
  RebuildParameterWithState,
  TorchSize,
  Storage,  // a torch.*Storage type: data for BINPERSID, not callable
};

struct StorageType {
  std::string_view name;  // "FloatStorage"
  std::string_view dtype_name;
  std::optional<DType> dtype;
  std::size_t elem_size;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", "F32", DType::F32, 4},     {"HalfStorage", "F16", DType::F16, 2},
    {"BFloat16Storage", "BF16", DType::BF16, 2}, {"DoubleStorage", "F64", DType::F64, 8},
    {"LongStorage", "I64", DType::I64, 8},      {"IntStorage", "I32", DType::I32, 4},
    {"ShortStorage", "I16", DType::I16, 2},     {"CharStorage", "I8", DType::I8, 1},
    {"ByteStorage", "U8", DType::U8, 1},        {"BoolStorage", "BOOL", DType::Bool, 1},
    {"UntypedStorage", "U8", DType::U8, 1},     {"ComplexFloatStorage", "C64", std::nullopt, 8},
    {"ComplexDoubleStorage", "C128", std::nullopt, 16},
};

enum class Kind : std::uint8_t {
  None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

using Id = std::uint32_t;

struct DictData {
  std::vector<std::pair<Id, Id>> entries;
  std::unordered_map<std::string, std::size_t> str_keys;
  std::unordered_map<std::int64_t, std::size_t> int_keys;
};

// Values live in an arena and refer to each other by index, so a pickle that builds a cycle
// (a list appended to itself) cannot leak or recurse: nothing here walks values recursively.
struct Value {
  Kind kind = Kind::None;
  bool from_ordered_dict = false;  // a Dict made by collections.OrderedDict (BUILD target)
  std::int64_t i = 0;  // Bool, Int; Global: enum; Storage: index; Tensor: index
  std::size_t storage_type = 0;  // Global::Storage: index into kStorageTypes
  double f = 0;
  std::string s;           // Str; Global: "module.name"
  std::vector<Id> items;   // Tuple, List
  std::unique_ptr<DictData> dict;
};

class Unpickler {
 public:
  Unpickler(ByteSpan data, const std::string& source, const UnpickleLimits& limits)
      : data_(data), source_(source), limits_(limits) {}

  TorchStateDict run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(str_cat(source_, ": ", what, " (at byte ", op_pos_, ")"));
  }
  void need(std::uint64_t n) const {
    if (n > data_.size() - pos_) fail("pickle ends in the middle of an opcode argument");
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v = read_le<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::string read_bytes(std::uint64_t n) {
    need(n);
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::string read_line() {
    constexpr std::size_t kMaxLine = 256;
    std::string s;
    while (true) {
      need(1);
      char c = static_cast<char>(data_[pos_++]);
      if (c == '\n') return s;
      if (s.size() == kMaxLine) fail("GLOBAL name too long");
      s += c;
    }
  }
  void charge(std::uint64_t work) {
    work_ += work;
    if (work_ > limits_.max_work) fail("pickle too large or too repetitive (work limit)");
  }

  Id make(Kind kind) {
    if (values_.size() >= limits_.max_values) fail("pickle creates too many objects");
    values_.emplace_back();
    values_.back().kind = kind;
    if (kind == Kind::Dict) values_.back().dict = std::make_unique<DictData>();
    return static_cast<Id>(values_.size() - 1);
  }
  Value& at(Id id) { return values_[id]; }
  void push(Id id) {
    if (stack_.size() >= limits_.max_stack) fail("pickle stack too deep");
    stack_.push_back(id);
  }
  // Items above the innermost MARK must exist; the top is never below the current mark.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Id pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    Id id = stack_.back();
    stack_.pop_back();
    return id;
  }
  Id top() const {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  // Pops everything above the innermost MARK, and the mark.
  std::vector<Id> pop_mark() {
    if (marks_.empty()) fail("pickle opcode needs a MARK but none is open");
    std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Id> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    charge(items.size());
    return items;
  }

  Id make_int(std::int64_t v) {
    Id id = make(Kind::Int);
    at(id).i = v;
    return id;
  }
  Id make_str(std::string s) {
    Id id = make(Kind::Str);
    at(id).s = std::move(s);
    return id;
  }
  Id make_tuple(std::vector<Id> items) {
    Id id = make(Kind::Tuple);
    at(id).items = std::move(items);
    return id;
  }

  void dict_set(Id dict_id, Id key, Id value);
  Id resolve_global(const std::string& module, const std::string& name);
  Id reduce(Id callable, Id args);
  Id persistent_load(Id pid);
  Id rebuild_tensor(const std::vector<Id>& args, bool v2);
  std::int64_t get_int(Id id, const char* what) {
    if (at(id).kind != Kind::Int) fail(str_cat(what, ": expected int, got ", kind_name(at(id).kind)));
    return at(id).i;
  }
  std::vector<std::int64_t> get_int_tuple(Id id, const char* what) {
    const Value& v = at(id);
    if (v.kind != Kind::Tuple) fail(str_cat(what, ": expected a tuple, got ", kind_name(v.kind)));
    std::vector<std::int64_t> out;
    for (Id item : v.items) {
      std::int64_t x = get_int(item, what);
      if (x < 0) fail(str_cat(what, ": negative value ", x));
      out.push_back(x);
    }
    return out;
  }
  TorchStateDict finish(Id result);

  ByteSpan data_;
  const std::string& source_;
  UnpickleLimits limits_;
  std::uint64_t pos_ = 0;
  std::uint64_t op_pos_ = 0;
  std::uint64_t work_ = 0;
  std::vector<Value> values_;
  std::vector<Id> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, Id> memo_;
  TorchStateDict out_;
  std::unordered_map<std::string, std::size_t> storage_by_key_;
  std::vector<PickledTensor> tensor_records_;
};

void Unpickler::dict_set(Id dict_id, Id key, Id value) {
  Value& d = at(dict_id);
  if (d.kind != Kind::Dict) fail(str_cat("SETITEM on a ", kind_name(d.kind), ", expected a dict"));
  DictData& dd = *d.dict;
  const Value& k = at(key);
  std::size_t slot = dd.entries.size();
  if (k.kind == Kind::Str) {
    slot = dd.str_keys.emplace(k.s, dd.entries.size()).first->second;
  } else if (k.kind == Kind::Int) {
    slot = dd.int_keys.emplace(k.i, dd.entries.size()).first->second;
  } else {
    fail(str_cat("dict key of type ", kind_name(k.kind), " is not supported (expected str or int)"));
  }
  if (slot == dd.entries.size()) {
    dd.entries.emplace_back(key, value);
  } else {
    dd.entries[slot].second = value;  // Python keeps the first position and the last value
  }
}

Id Unpickler::resolve_global(const std::string& module, const std::string& name) {
  Global g;
  std::size_t storage_type = 0;
  if (module == "collections" && name == "OrderedDict") {
    g = Global::OrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g = Global::RebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    g = Global::RebuildTensor;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g = Global::RebuildParameter;
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    g = Global::RebuildParameterWithState;
  } else if (module == "torch" && name == "Size") {
    g = Global::TorchSize;
  } else {
    bool found = false;
    if (module == "torch") {
      for (std::size_t i = 0; i < std::size(kStorageTypes); ++i) {
        if (kStorageTypes[i].name == name) {
          storage_type = i;
          found = true;
        }
      }
    }
    if (!found) {
      throw FormatError(str_cat(source_, ": refused global '", printable(module), ".",
                                printable(name),
                                "' (only torch state-dict globals are allowed)"));
    }
    g = Global::Storage;
  }
  Id id = make(Kind::Global);
  at(id).i = static_cast<std::int64_t>(g);
  at(id).storage_type = storage_type;
  at(id).s = module + "." + name;
  return id;
}

Id Unpickler::persistent_load(Id pid) {
  const Value& p = at(pid);
  if (p.kind != Kind::Tuple || p.items.size() != 5) {
    fail("persistent id must be a 5-tuple ('storage', type, key, location, numel)");
  }
  const Value& tag = at(p.items[0]);
  const Value& type = at(p.items[1]);
  const Value& key = at(p.items[2]);
  const Value& location = at(p.items[3]);
  if (tag.kind != Kind::Str || tag.s != "storage") fail("persistent id tag is not 'storage'");
  if (type.kind != Kind::Global || type.i != static_cast<std::int64_t>(Global::Storage)) {
    fail(str_cat("persistent id type must be a torch storage type (got ", kind_name(type.kind),
                 type.kind == Kind::Global ? " " + type.s : "", ")"));
  }
  if (key.kind != Kind::Str) fail("persistent id key must be a string");
  if (location.kind != Kind::Str) fail("persistent id location must be a string");
  std::int64_t numel = get_int(p.items[4], "storage numel");
  if (numel < 0) fail(str_cat("storage '", printable(key.s), "' has negative size ", numel));
  const StorageType& st = kStorageTypes[type.storage_type];

  auto [it, inserted] = storage_by_key_.emplace(key.s, out_.storages.size());
  if (inserted) {
    PickledStorage s;
    s.key = key.s;
    s.dtype_name = std::string(st.dtype_name);
    s.dtype = st.dtype;
    s.elem_size = st.elem_size;
    s.numel = numel;
    out_.storages.push_back(std::move(s));
  } else {
    const PickledStorage& s = out_.storages[it->second];
    if (s.dtype_name != st.dtype_name || s.numel != numel || s.elem_size != st.elem_size) {
      fail(str_cat("storage '", printable(key.s), "' is declared twice differently (", s.dtype_name,
                   " x ", s.numel, " vs ", st.dtype_name, " x ", numel, ")"));
    }
  }
  const auto storage_index = static_cast<std::int64_t>(it->second);
  Id id = make(Kind::Storage);  // invalidates the references above
  at(id).i = storage_index;
  return id;
}

Id Unpickler::rebuild_tensor(const std::vector<Id>& args, bool v2) {
  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
  // _rebuild_tensor(storage, offset, size, stride)
  const char* fn = v2 ? "_rebuild_tensor_v2" : "_rebuild_tensor";
  if (v2 ? (args.size() != 6 && args.size() != 7) : args.size() != 4) {
    fail(str_cat(fn, " called with ", args.size(), " arguments (expected ", v2 ? "6 or 7" : "4",
                 ")"));
  }
  if (at(args[0]).kind != Kind::Storage) {
    fail(str_cat(fn, ": first argument must be a storage (got ", kind_name(at(args[0]).kind), ")"));
  }
  if (v2) {
    if (at(args[4]).kind != Kind::Bool) fail(str_cat(fn, ": requires_grad must be a bool"));
    if (at(args[5]).kind != Kind::Dict) fail(str_cat(fn, ": backward_hooks must be a dict"));
    if (args.size() == 7 && at(args[6]).kind != Kind::Dict && at(args[6]).kind != Kind::None) {
      fail(str_cat(fn, ": metadata must be a dict"));
    }
  }
  if (tensor_records_.size() >= limits_.max_tensors) fail("too many tensors");
  PickledTensor t;
  t.storage = static_cast<std::size_t>(at(args[0]).i);
  t.offset = get_int(args[1], "storage_offset");
  if (t.offset < 0) fail(str_cat(fn, ": negative storage_offset ", t.offset));
  t.shape = get_int_tuple(args[2], "size");
  t.strides = get_int_tuple(args[3], "stride");
  if (t.shape.size() != t.strides.size()) {
    fail(str_cat(fn, ": size ", shape_str(t.shape), " and stride ", shape_str(t.strides),
                 " differ in length"));
  }
  charge(t.shape.size());
  // numel and the furthest element, overflow-checked, must stay inside the storage.
  std::int64_t numel = 1;
  std::int64_t last = t.offset;
  for (std::size_t i = 0; i < t.shape.size(); ++i) {
    std::int64_t span = 0;
    if (__builtin_mul_overflow(numel, t.shape[i], &numel)) fail("tensor size overflows");
    if (t.shape[i] > 0 && (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &span) ||
                           __builtin_add_overflow(last, span, &last))) {
      fail("tensor extent overflows");
    }
  }
  t.numel = numel;
  const PickledStorage& s = out_.storages[t.storage];
  if (numel > 0 && last >= s.numel) {
    fail(str_cat("tensor with offset ", t.offset, ", size ", shape_str(t.shape), ", stride ",
                 shape_str(t.strides), " reaches element ", last, " of storage '",
                 printable(s.key), "' (expected < ", s.numel, ")"));
  }
  // More elements than the storage holds means elements alias (an expand()/broadcast view with
  // a zero stride). Refusing it bounds every copy we make by the size of the file.
  if (numel > s.numel) {
    throw Unsupported(str_cat(source_, ": tensor with size ", shape_str(t.shape), " and stride ",
                              shape_str(t.strides), " has more elements than its storage '",
                              printable(s.key), "' (", s.numel,
                              "): overlapping views are not supported; save a .contiguous() copy"));
  }
  if (numel == 0 && t.offset > s.numel) {
    fail(str_cat("empty tensor offset ", t.offset, " is past storage '", printable(s.key),
                 "' (", s.numel, " elements)"));
  }
  tensor_records_.push_back(std::move(t));
  Id id = make(Kind::Tensor);
  at(id).i = static_cast<std::int64_t>(tensor_records_.size() - 1);
  return id;
}

Id Unpickler::reduce(Id callable, Id args_id) {
  // Values are copied out of the arena up front: make() below may reallocate it, which would
  // leave references dangling.
  if (at(callable).kind != Kind::Global) {
    fail(str_cat("REDUCE on a ", kind_name(at(callable).kind), ", not a callable"));
  }
  const Global g = static_cast<Global>(at(callable).i);
  const std::string callable_name = at(callable).s;
  if (at(args_id).kind != Kind::Tuple) {
    fail(str_cat("REDUCE arguments must be a tuple (got ", kind_name(at(args_id).kind), ")"));
  }
  const std::vector<Id> args = at(args_id).items;
  switch (g) {
    case Global::OrderedDict: {
      if (args.size() > 1) fail("OrderedDict called with more than one argument");
      std::vector<Id> pairs;
      if (args.size() == 1) {
        const Value& src = at(args[0]);
        if (src.kind != Kind::List && src.kind != Kind::Tuple) {
          fail(str_cat("OrderedDict argument must be a list of pairs (got ", kind_name(src.kind),
                       ")"));
        }
        pairs = src.items;
      }
      Id d = make(Kind::Dict);
      at(d).from_ordered_dict = true;
      charge(pairs.size());
      for (Id pair : pairs) {
        const Value& p = at(pair);
        if (p.kind != Kind::Tuple || p.items.size() != 2) fail("OrderedDict item is not a pair");
        Id k = p.items[0], v = p.items[1];
        dict_set(d, k, v);
      }
      return d;
    }
    case Global::RebuildTensorV2: return rebuild_tensor(args, true);
    case Global::RebuildTensor: return rebuild_tensor(args, false);
    case Global::RebuildParameter:
    case Global::RebuildParameterWithState: {
      bool with_state = g == Global::RebuildParameterWithState;
      if (args.size() != (with_state ? 4u : 3u)) {
        fail(str_cat(callable_name, " called with ", args.size(), " arguments (expected ",
                     with_state ? 4 : 3, ")"));
      }
      if (at(args[0]).kind != Kind::Tensor) fail(str_cat(callable_name, ": first argument must be a tensor"));
      return args[0];  // a Parameter is its tensor for our purposes
    }
    case Global::TorchSize: {
      if (args.size() != 1 || at(args[0]).kind != Kind::Tuple) {
        fail("torch.Size must be called with one tuple");
      }
      return args[0];
    }
    case Global::Storage: break;
  }
  fail(str_cat("global '", callable_name, "' is not callable"));
}

TorchStateDict Unpickler::run() {
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= data_.size()) fail("pickle ends without STOP");
    const std::uint8_t op = data_[pos_++];
    switch (op) {
      case 0x80: {  // PROTO
        std::uint8_t proto = read<std::uint8_t>();
        if (proto < 2 || proto > 5) {
          throw Unsupported(str_cat(source_, ": pickle protocol ", int{proto},
                                    " is not supported (expected 2, as torch.save writes)"));
        }
        break;
      }
      case 0x95: {  // FRAME: framing is only a buffering hint; the opcodes follow inline
        std::uint64_t len = read<std::uint64_t>();
        if (len > data_.size() - pos_) fail("FRAME longer than the pickle");
        break;
      }
      case 'c': {  // GLOBAL
        std::string module = read_line();
        std::string name = read_line();
        push(resolve_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL: same allowlist as GLOBAL
        Id name = pop();
        Id module = pop();
        if (at(name).kind != Kind::Str || at(module).kind != Kind::Str) {
          fail("STACK_GLOBAL needs two strings");
        }
        // Copies: resolve_global() allocates a value, which may move values_.
        std::string module_name = at(module).s;
        std::string global_name = at(name).s;
        push(resolve_global(module_name, global_name));
        break;
      }
      case 'q':     // BINPUT
      case 'r':     // LONG_BINPUT
      case 0x94: {  // MEMOIZE
        std::uint32_t idx = op == 'q'   ? read<std::uint8_t>()
                            : op == 'r' ? read<std::uint32_t>()
                                        : static_cast<std::uint32_t>(memo_.size());
        Id v = top();
        if (memo_.size() >= limits_.max_memo && !memo_.count(idx)) fail("pickle memo too large");
        memo_[idx] = v;
        break;
      }
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        std::uint32_t idx = op == 'h' ? read<std::uint8_t>() : read<std::uint32_t>();
        auto it = memo_.find(idx);
        if (it == memo_.end()) fail(str_cat("memo index ", idx, " was never stored"));
        push(it->second);
        break;
      }
      case '(':  // MARK
        if (marks_.size() >= limits_.max_marks) fail("too many nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case ')': push(make_tuple({})); break;  // EMPTY_TUPLE
      case 't': push(make_tuple(pop_mark())); break;  // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::size_t n = static_cast<std::size_t>(op - 0x84);
        std::vector<Id> items(n);
        for (std::size_t i = n; i-- > 0;) items[i] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case ']': push(make(Kind::List)); break;  // EMPTY_LIST
      case 'a': {  // APPEND
        Id v = pop();
        Id l = top();
        if (at(l).kind != Kind::List) fail(str_cat("APPEND to a ", kind_name(at(l).kind)));
        at(l).items.push_back(v);
        charge(1);
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Id> items = pop_mark();
        Id l = top();
        if (at(l).kind != Kind::List) fail(str_cat("APPENDS to a ", kind_name(at(l).kind)));
        at(l).items.insert(at(l).items.end(), items.begin(), items.end());
        break;
      }
      case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
      case 's': {  // SETITEM
        Id v = pop();
        Id k = pop();
        dict_set(top(), k, v);
        charge(1);
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Id> items = pop_mark();
        if (items.size() % 2 != 0) fail("SETITEMS with an odd number of items");
        Id d = top();
        for (std::size_t i = 0; i < items.size(); i += 2) dict_set(d, items[i], items[i + 1]);
        break;
      }
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d: {  // BINUNICODE8
        std::uint64_t n = op == 'X'    ? read<std::uint32_t>()
                          : op == 0x8c ? read<std::uint8_t>()
                                       : read<std::uint64_t>();
        std::string s = read_bytes(n);
        if (!is_valid_utf8(s)) fail("string is not valid UTF-8");
        push(make_str(std::move(s)));
        break;
      }
      case 'U': {  // SHORT_BINSTRING (Python 2 str, decoded as ASCII)
        std::string s = read_bytes(read<std::uint8_t>());
        for (char ch : s) {
          if (static_cast<unsigned char>(ch) >= 0x80) fail("SHORT_BINSTRING is not ASCII");
        }
        push(make_str(std::move(s)));
        break;
      }
      case 'K': push(make_int(read<std::uint8_t>())); break;   // BININT1
      case 'M': push(make_int(read<std::uint16_t>())); break;  // BININT2
      case 'J':  // BININT
        push(make_int(static_cast<std::int32_t>(read<std::uint32_t>())));
        break;
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        std::uint8_t n = read<std::uint8_t>();
        if (n > 8) fail(str_cat("integer of ", int{n}, " bytes does not fit in 64 bits"));
        need(n);
        std::uint64_t u = 0;
        for (std::uint8_t i = 0; i < n; ++i) u |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
        if (n > 0 && n < 8 && (data_[pos_ + n - 1] & 0x80)) u |= ~std::uint64_t{0} << (8 * n);
        pos_ += n;
        push(make_int(static_cast<std::int64_t>(u)));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        need(8);
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | data_[pos_ + i];
        pos_ += 8;
        Id id = make(Kind::Float);
        at(id).f = std::bit_cast<double>(u);
        push(id);
        break;
      }
      case 'N': push(make(Kind::None)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        Id id = make(Kind::Bool);
        at(id).i = op == 0x88;
        push(id);
        break;
      }
      case 'R': {  // REDUCE
        Id args = pop();
        Id callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 'b': {  // BUILD: only sets OrderedDict._metadata, which we ignore
        Id state = pop();
        Id target = top();
        if (at(target).kind != Kind::Dict || !at(target).from_ordered_dict) {
          fail(str_cat("BUILD on a ", kind_name(at(target).kind), " (only OrderedDict is allowed)"));
        }
        const Value& s = at(state);
        bool ok = s.kind == Kind::Dict ||
                  (s.kind == Kind::Tuple && s.items.size() == 2 &&
                   (at(s.items[0]).kind == Kind::Dict || at(s.items[0]).kind == Kind::None) &&
                   (at(s.items[1]).kind == Kind::Dict || at(s.items[1]).kind == Kind::None));
        if (!ok) fail("BUILD state must be a dict or a (dict, slots) pair");
        break;
      }
      case 'Q': {  // BINPERSID
        Id pid = pop();
        push(persistent_load(pid));
        break;
      }
      case '.': {  // STOP
        Id result = pop();
        if (pos_ != data_.size()) {
          fail(str_cat(data_.size() - pos_, " trailing bytes after STOP"));
        }
        return finish(result);
      }
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        std::string hex = {'0', 'x', kHex[op >> 4], kHex[op & 15]};
        fail(str_cat("pickle opcode ", hex,
                     (op >= 0x20 && op < 0x7f) ? str_cat(" ('", static_cast<char>(op), "')") : "",
                     " is not allowed in a state dict"));
      }
    }
  }
}

TorchStateDict Unpickler::finish(Id result) {
  auto all_tensors = [&](Id d) {
    for (const auto& [k, v] : at(d).dict->entries) {
      if (at(v).kind != Kind::Tensor) return false;
    }
    return true;
  };
  auto find_key = [&](Id d, const char* key) -> std::optional<Id> {
    auto it = at(d).dict->str_keys.find(key);
    if (it == at(d).dict->str_keys.end()) return std::nullopt;
    return at(d).dict->entries[it->second].second;
  };
  if (at(result).kind != Kind::Dict) {
    fail(str_cat("pickled object is a ", kind_name(at(result).kind),
                 " (expected a state dict: a dict of name -> tensor)"));
  }
  Id sd = result;
  if (!all_tensors(sd)) {
    for (const char* key : {"state_dict", "model"}) {
      std::optional<Id> inner = find_key(sd, key);
      if (inner && at(*inner).kind == Kind::Dict && all_tensors(*inner)) {
        sd = *inner;
        break;
      }
    }
  }
  for (const auto& [k, v] : at(sd).dict->entries) {
    const Value& key = at(k);
    std::string name = key.kind == Kind::Str ? key.s : str_cat(key.i);
    if (key.kind != Kind::Str) fail(str_cat("state dict key ", name, " is not a string"));
    if (at(v).kind != Kind::Tensor) {
      fail(str_cat("state dict entry '", printable(name), "' is a ", kind_name(at(v).kind),
                   " (expected a tensor)"));
    }
    PickledTensor t = tensor_records_[static_cast<std::size_t>(at(v).i)];
    t.name = name;
    out_.tensors.push_back(std::move(t));
  }
  return std::move(out_);
}

}  // namespace

TorchStateDict unpickle_state_dict(ByteSpan pkl, const std::string& source,
                                   const UnpickleLimits& limits) {
  return Unpickler(pkl, source, limits).run();
}

}  // namespace mmembed::io
