/* compute_type.c — names of the compute types, as faster-whisper spells them. */
#include "model.h"

#include <string.h>

static const char *const names[] = {
    [ASR_COMPUTE_AUTO] = "auto",
    [ASR_COMPUTE_FLOAT32] = "float32",
    [ASR_COMPUTE_FLOAT16] = "float16",
    [ASR_COMPUTE_BFLOAT16] = "bfloat16",
    [ASR_COMPUTE_INT8] = "int8",
    [ASR_COMPUTE_INT8_FLOAT32] = "int8_float32",
    [ASR_COMPUTE_INT8_BFLOAT16] = "int8_bfloat16",
};

int asr_compute_type_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *asr_compute_type_name(asr_compute_type type)
{
    return (unsigned)type < sizeof names / sizeof *names ? names[type] : "unknown";
}
