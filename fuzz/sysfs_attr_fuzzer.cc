// libFuzzer target: the sysfs attribute readers every scanner relies on (ReadAttr, ReadIntAttr,
// ParseDevNumber), on the bytes written into a real file. Invariants: an accepted attribute has
// no NUL byte, no trailing newline, blank, tab or CR and at most 4 KiB; an accepted integer prints
// back to an equal integer; an accepted device number re-parses from its "major:minor" form.
#include <unistd.h>

#include <string>

#include "common/files.h"
#include "fmt/format.h"
#include "fuzz/fuzz_check.h"

namespace {

const std::string& AttrPath() {
  static const rdmashare::fuzz::ScratchDir dir("attr");
  static const std::string path = dir.path() + "/attr";
  return path;
}

}  // namespace

bool RsFuzzAccepts(const uint8_t* data, size_t size) {
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(AttrPath(), rdmashare::fuzz::AsString(data, size)));
  auto text = rdmashare::ReadAttr(AttrPath());
  return text.ok() && rdmashare::ParseDevNumber(*text).ok();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdmashare;
  std::string input = fuzz::AsString(data, size);
  RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(AttrPath(), input));
  auto text = ReadAttr(AttrPath());
  if (text.ok()) {
    RS_FUZZ_CHECK(text->find('\0') == std::string::npos);
    RS_FUZZ_CHECK(text->size() <= 4096);
    RS_FUZZ_CHECK(text->empty() || (text->back() != '\n' && text->back() != ' ' &&
                                    text->back() != '\t' && text->back() != '\r'));
  } else {
    RS_FUZZ_CHECK(!text.status().message().empty());
  }
  auto value = ReadIntAttr(AttrPath());
  if (value.ok()) {
    RS_FUZZ_CHECK(rdmashare::fuzz::WriteRaw(AttrPath(), std::to_string(*value) + "\n"));
    auto back = ReadIntAttr(AttrPath());
    RS_FUZZ_CHECK(back.ok() && *back == *value);
  }
  auto dev = ParseDevNumber(input);
  if (dev.ok()) {
    auto back = ParseDevNumber(fmt::format("{}:{}", dev->first, dev->second));
    RS_FUZZ_CHECK(back.ok() && *back == *dev);
  }
  return 0;
}
