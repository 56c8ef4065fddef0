/* timing.h — word timestamps (openai/whisper timing.py). */
#ifndef ASR_TIMING_H
#define ASR_TIMING_H

#include "engine.h"

/* openai's add_word_timestamps for the segments [first, res->n_segments) of
 * the window whose encoder output is in st: aligns their text tokens to the
 * first n_frames mel frames, attaches words (times in seconds from the start
 * of the audio), moves segment bounds to their words and carries
 * *last_speech (the end of the last speech, 0 at the start) across windows.
 * task and lang give the sot sequence the window was decoded with. */
asr_status asr_add_word_timestamps(asr_state *st, asr_result *res, int first, int task, int lang, int n_frames,
                                   double *last_speech, asr_error *err);

/* openai's get_end: the end of the last word of segments [first, n), else
 * the end of the last segment, else -1. */
double asr_words_end(const asr_result *res, int first);

#endif
