/* fuzz_code.c - libFuzzer target for model files read as Python code (.py); the
 * checks are in fuzz_model.h. Seeds: fuzz/corpus/code. */
#include "fuzz_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_model_file(data, size, "fuzz.py");
}
