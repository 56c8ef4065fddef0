/* files.h — `asr transcribe`'s input files: one after another, or several at once on one scheduler. */
#ifndef ASR_CLI_FILES_H
#define ASR_CLI_FILES_H

#include "asr.h"

/* Exit codes: distinguish the caller's mistake from bad input and our failure. */
enum { EXIT_OK = 0, EXIT_INTERNAL = 1, EXIT_USAGE = 2, EXIT_BAD_INPUT = 3 };
int exit_code_for(asr_status s);

typedef struct cli_files {
    asr_model *model;
    const asr_transcribe_params *tp; /* on_progress and user_data are set per file */
    const asr_audio_limits *limits;
    int fmt;                         /* asr_format of the output */
    int progress;                    /* progress and timings on stderr */
    int jobs;                        /* files transcribed at once (≥ 1) */
    /* writes one file's output; called in input order from the calling thread */
    int (*write)(const char *file, const char *body, void *ctx);
    void *write_ctx;
} cli_files;

/* Transcribe files[0..n): with jobs > 1 (and more than one file) that many
 * at once, each on its own state of one shared asr_scheduler, so their
 * decoder steps run together; each file's text is the one it gets alone.
 * Returns the exit code of the first file that failed, in input order. */
int cli_transcribe_files(const cli_files *run, char **files, int n);

#endif
