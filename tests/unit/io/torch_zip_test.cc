#include "io/torch_zip.h"

#include <gtest/gtest.h>

#include "io/checkpoint.h"
#include "io/torch_pickle.h"
#include "test_util.h"

namespace mmembed::io {
namespace {

using namespace std::string_literals;

using testing::data_path;

ByteSpan span_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// ---- pickle builders (protocol 2 opcodes) ----
std::string bu(const std::string& s) {  // BINUNICODE
  std::string out = "X";
  for (int i = 0; i < 4; ++i) out += static_cast<char>((s.size() >> (8 * i)) & 0xff);
  return out + s;
}
std::string global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
// One tensor: storage key "0" of `numel` floats, viewed with offset/size/stride.
std::string tensor_pkl(int storage_numel, int offset, const std::string& size_tuple,
                       const std::string& stride_tuple) {
  return global("torch._utils", "_rebuild_tensor_v2") + "((" + bu("storage") +
         global("torch", "FloatStorage") + bu("0") + bu("cpu") + "K" +
         static_cast<char>(storage_numel) + "tQK" + static_cast<char>(offset) + size_tuple +
         stride_tuple + "\x89" + global("collections", "OrderedDict") + ")RtR";
}
std::string state_dict_pkl(const std::string& tensor) {
  return std::string("\x80\x02}") + bu("w") + tensor + "s.";
}
const std::string kOk = state_dict_pkl(tensor_pkl(4, 0, "K\x02K\x02\x86", "K\x02K\x01\x86"));

TorchStateDict unpickle(const std::string& pkl) { return unpickle_state_dict(span_of(pkl), "t.pkl"); }

TEST(TorchZip, StateDictMatchesTorch) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  EXPECT_EQ(ckpt.format(), "pytorch-zip");
  testing::expect_matches_torch(ckpt, "torch_state.bin");
}

TEST(TorchZip, SharedStorageIsMappedOnceAndViewsAreHandled) {
  Checkpoint ckpt = open_checkpoint(data_path("torch_state.bin"));
  Tensor w = ckpt.get("0.weight");
  Tensor row = ckpt.get("0.weight_row1");
  // Both are views of the same mapped storage record: no copy, no second read.
  EXPECT_EQ(static_cast<const float*>(row.raw()), static_cast<const float*>(w.raw()) + 4);
  // The transposed view is gathered into a contiguous copy.
  Tensor wt = ckpt.get("0.weight_t");
  ASSERT_EQ(wt.shape(), (Shape{4, 3}));
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_EQ(wt.data<float>()[i * 3 + j], w.data<float>()[j * 4 + i]);
  }
}

TEST(TorchZip, OtherTorchSaveVariantsMatchTorch) {
  for (const char* rel : {"torch_proto4.bin", "torch_params.bin", "torch_wrapped.bin",
                          "torch_bigendian.bin"}) {
    SCOPED_TRACE(rel);
    testing::expect_matches_torch(open_checkpoint(data_path(rel)), rel);
  }
}

TEST(TorchZip, MaliciousGlobalsAreRefusedByName) {
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("malicious_os_system.bin")),
               "malicious_os_system.bin: data.pkl: refused global 'os.system' "
               "(only torch state-dict globals are allowed)");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("malicious_eval.bin")),
               "malicious_eval.bin: data.pkl: refused global 'builtins.eval'");
}

TEST(TorchZip, LegacyAndTorchScriptAreRefusedWithAdvice) {
  EXPECT_ERROR(Unsupported, open_checkpoint(data_path("legacy.bin")), "legacy.bin",
               "legacy PyTorch", "torch.save", "safetensors");
  EXPECT_ERROR(Unsupported, open_checkpoint(data_path("torchscript.pt")), "torchscript.pt",
               "TorchScript");
  std::string tar(512, '\0');
  tar.replace(257, 5, "ustar");
  EXPECT_ERROR(Unsupported, check_torch_container(span_of(tar), "old.tar"), "old.tar", "tar");
  EXPECT_ERROR(Unsupported, check_torch_container(span_of("PYTORCH1xxxx"), "p1"), "PYTORCH1");
}

TEST(TorchZip, CorruptArchives) {
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad/zip_missing_storage.bin")),
               "zip_missing_storage.bin", "storage '0' has no record 'torch_state/data/0'");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad/zip_compressed.bin")),
               "zip_compressed.bin", "entry 'torch_state/data.pkl' is compressed (method 8)");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad/truncated.bin")), "truncated.bin",
               "zip:");
  EXPECT_ERROR(FormatError, open_checkpoint(data_path("bad/not_a_checkpoint.bin")),
               "not_a_checkpoint.bin", "not a PyTorch zip checkpoint");
}

TEST(Unpickler, MinimalStateDict) {
  TorchStateDict sd = unpickle(kOk);
  ASSERT_EQ(sd.tensors.size(), 1u);
  EXPECT_EQ(sd.tensors[0].name, "w");
  EXPECT_EQ(sd.tensors[0].shape, (Shape{2, 2}));
  EXPECT_TRUE(sd.tensors[0].contiguous());
  ASSERT_EQ(sd.storages.size(), 1u);
  EXPECT_EQ(sd.storages[0].dtype_name, "F32");
  EXPECT_EQ(sd.storages[0].numel, 4);
}

TEST(Unpickler, RefusesAnythingOutsideTheAllowlist) {
  EXPECT_ERROR(FormatError, unpickle("\x80\x02" + global("posix", "system") + ")R."),
               "t.pkl: refused global 'posix.system'");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02" + global("torch", "load") + ")R."),
               "refused global 'torch.load'");
  // STACK_GLOBAL goes through the same table.
  EXPECT_ERROR(FormatError, unpickle("\x80\x04" + bu("subprocess") + bu("call") + "\x93."),
               "refused global 'subprocess.call'");
  // INST / OBJ / NEWOBJ and text opcodes are not part of a state dict.
  EXPECT_ERROR(FormatError, unpickle("\x80\x02(ios\nsystem\n."), "opcode 0x69 ('i')",
               "not allowed");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02" + global("collections", "OrderedDict") + ")\x81."),
               "opcode 0x81");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02" + global("torch", "FloatStorage") + ")R."),
               "'torch.FloatStorage' is not callable");
  EXPECT_ERROR(Unsupported, unpickle("\x80\x01}."), "protocol 1");
}

TEST(Unpickler, StructuralErrors) {
  EXPECT_ERROR(FormatError, unpickle(kOk + "N"), "1 trailing bytes after STOP");
  EXPECT_ERROR(FormatError, unpickle(kOk.substr(0, kOk.size() - 1)), "ends without STOP");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02h\x05."), "memo index 5 was never stored");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02t."), "needs a MARK");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02."), "stack underflow");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02(."), "stack underflow");  // nothing above the MARK
  EXPECT_ERROR(FormatError, unpickle("\x80\x02\x8a\x09" + std::string(9, '\x01') + "."),
               "does not fit in 64 bits");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02X\xff\xff\xff\x00" "abc."s), "ends in the middle");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02K\x01."), "pickled object is a int");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02}" + bu("x") + "K\x01s."),
               "state dict entry 'x' is a int (expected a tensor)");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02]K\x01K\x02s."), "SETITEM on a list");
  EXPECT_ERROR(FormatError, unpickle("\x80\x02}K\x01" "b."), "BUILD on a dict");
}

TEST(Unpickler, TensorBoundsAreChecked) {
  // 2x2 with row stride 3 reaches element 4 of a 4-element storage.
  EXPECT_ERROR(FormatError, unpickle(state_dict_pkl(tensor_pkl(4, 0, "K\x02K\x02\x86", "K\x03K\x01\x86"))),
               "reaches element 4 of storage '0' (expected < 4)");
  EXPECT_ERROR(FormatError, unpickle(state_dict_pkl(tensor_pkl(4, 1, "K\x02K\x02\x86", "K\x02K\x01\x86"))),
               "reaches element 4");
  EXPECT_ERROR(FormatError, unpickle(state_dict_pkl(tensor_pkl(4, 0, "K\x02\x85", "K\x02K\x01\x86"))),
               "differ in length");
  // A broadcast (stride 0) view has more elements than its storage: refused.
  EXPECT_ERROR(Unsupported, unpickle(state_dict_pkl(tensor_pkl(4, 0, "K\x08\x85", "K\x00\x85"s))),
               "overlapping views are not supported");
  // Strided but in bounds: accepted and marked non-contiguous.
  TorchStateDict sd = unpickle(state_dict_pkl(tensor_pkl(4, 0, "K\x02K\x02\x86", "K\x01K\x02\x86")));
  EXPECT_FALSE(sd.tensors[0].contiguous());
}

TEST(Unpickler, ResourceLimits) {
  auto with = [](auto set) {
    UnpickleLimits l;
    set(l);
    return l;
  };
  auto run = [&](const std::string& pkl, const UnpickleLimits& l) {
    unpickle_state_dict(ByteSpan(reinterpret_cast<const std::uint8_t*>(pkl.data()), pkl.size()),
                        "t.pkl", l);
  };
  EXPECT_NO_THROW(run(kOk, UnpickleLimits{}));
  EXPECT_ERROR(FormatError, run(kOk, with([](auto& l) { l.max_values = 5; })), "too many objects");
  EXPECT_ERROR(FormatError, run(kOk, with([](auto& l) { l.max_stack = 3; })), "stack too deep");
  EXPECT_ERROR(FormatError, run(kOk, with([](auto& l) { l.max_marks = 1; })), "nested MARKs");
  EXPECT_ERROR(FormatError, run(kOk, with([](auto& l) { l.max_tensors = 0; })), "too many tensors");
  EXPECT_ERROR(FormatError, run(kOk, with([](auto& l) { l.max_work = 2; })), "work limit");
  EXPECT_ERROR(FormatError, run("\x80\x02Nq\x00q\x01q\x02."s, with([](auto& l) { l.max_memo = 2; })),
               "memo too large");
}

TEST(Unpickler, CyclesDoNotHangOrLeak) {
  // l = []; l.append(l); then a non-dict result.
  EXPECT_ERROR(FormatError, unpickle("\x80\x02]q\x00h\x00" "a."s), "pickled object is a list");
  // A dict that contains itself.
  EXPECT_ERROR(FormatError, unpickle("\x80\x02}q\x00"s + bu("x") + "h\x00s."s),
               "state dict entry 'x' is a dict");
}

}  // namespace
}  // namespace mmembed::io
