/* fuzz_model_ct2.c — libFuzzer harness for the CTranslate2 model.bin parser and weight binder (asr_model_load_ct2_bin).
 *
 * The input is a model.bin. Whatever it holds, loading must return: ASR_OK,
 * or an error with a message — never crash, hang, leak or read outside the
 * input (the sanitizers and libFuzzer's -timeout/-rss_limit_mb watch that).
 * Built by `make fuzz`; run by tests/integration/fuzz_smoke.sh.
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
    asr_status s = asr_model_load_ct2_bin(m, data, size, &err);
    if (s != ASR_OK && (s != err.code || !err.message[0])) abort(); /* an error always says what went wrong */
    asr_model_free(m);
    return 0;
}
