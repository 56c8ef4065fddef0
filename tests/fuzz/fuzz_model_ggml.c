/* fuzz_model_ggml.c — libFuzzer harness for the whisper.cpp ggml loader (asr_model_load_ggml_buffer).
 *
 * The input is a ggml model file. Loading must return ASR_OK or an error
 * with a message, never crash, hang, leak or over-allocate; a file that
 * loads also goes through asr_model_finish_load (special tokens, suppress
 * lists from its vocabulary). Built by `make fuzz`; run by
 * tests/integration/fuzz_smoke.sh.
 */
#include "model.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    asr_model *m = calloc(1, sizeof *m);
    if (!m) return 0;
    asr_error err = {0};
    asr_status s = asr_model_load_ggml_buffer(m, data, size, "fuzz.bin", &err);
    if (s == ASR_OK) s = asr_model_finish_load(m, &err);
    if (s != ASR_OK && (s != err.code || !err.message[0])) abort(); /* an error always says what went wrong */
    asr_model_free(m);
    return 0;
}
