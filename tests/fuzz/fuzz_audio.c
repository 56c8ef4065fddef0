/* fuzz_audio.c — libFuzzer harness for audio decoding from memory (asr_audio_decode_memory).
 *
 * The input is an upload's bytes. The first byte picks raw s16le or
 * container decoding; the rest is the audio. Decoding must give ASR_OK with
 * samples in [-1, 1] within the duration limit, or an error with a message;
 * never crash, hang or leak. FFmpeg itself is not instrumented (a Debian
 * library): coverage counts asr's side (probing, the allow-list, limits,
 * resampling). Built by `make fuzz`; run by tests/integration/fuzz_smoke.sh.
 */
#include "asr.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    asr_audio_limits lim = asr_audio_default_limits();
    lim.max_duration_s = 120.0; /* bounded memory per input: 7.7 MB of samples */
    lim.deadline_s = 5.0;       /* a decoder that spins is a finding: -timeout is 10 s */
    lim.raw_pcm_s16le = data[0] == 'R';
    asr_audio a = {0};
    asr_error err = {0};
    asr_status s = asr_audio_decode_memory(data + 1, size - 1, &lim, &a, &err);
    if (s != ASR_OK) {
        if (s != err.code || !err.message[0] || a.samples) abort(); /* an error says why, owns nothing */
        return 0;
    }
    if (a.n_samples > (size_t)(lim.max_duration_s * ASR_SAMPLE_RATE) + ASR_SAMPLE_RATE) abort();
    for (size_t i = 0; i < a.n_samples; i++)
        if (!(fabsf(a.samples[i]) <= 1.0f)) abort(); /* NaN too */
    asr_audio_free(&a);
    return 0;
}
