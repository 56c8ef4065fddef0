/* model_ggml.c — whisper.cpp ggml model files: reading and writing. (being written) */
#include "model.h"

asr_status asr_model_load_ggml(asr_model *m, const char *path, asr_error *err)
{
    (void)m;
    return asr_fail(err, ASR_ERR_MODEL, "%s: ggml model files are not supported yet", path);
}

asr_status asr_model_write_ggml(const asr_model *model, const char *out_path, int use_f16, asr_error *err)
{
    (void)model; (void)use_f16;
    return asr_fail(err, ASR_ERR_UNSUPPORTED, "%s: writing ggml files is not supported yet", out_path);
}
