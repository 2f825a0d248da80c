/* fuzz_repr.c - libFuzzer target for model files read as print(model) text (.txt); the
 * checks are in fuzz_model.h. Seeds: fuzz/corpus/repr. */
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_model_file(data, size, "fuzz.txt");
}
