#include <cstdio>

#include "mmembed/version.h"

int main() {
  std::printf("mmembed %s\n", MMEMBED_VERSION);
  return 0;
}
