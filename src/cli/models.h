/* models.h — the local model cache: `asr models pull|list|path` and the
 * resolution of a --model argument to a directory or file. */
#ifndef ASR_CLI_MODELS_H
#define ASR_CLI_MODELS_H

#include <stddef.h>

/* Default model name when neither --model nor ASR_MODEL is given. */
#define ASR_CLI_DEFAULT_MODEL "tiny.en"

/* `asr models SUBCOMMAND ...`; argv[0] is "models". Prints to stdout/stderr
 * and returns the process exit status (0 ok, 1 failure, 2 usage error). */
int asr_cli_models(int argc, char **argv);

/* The cache directory: $ASR_MODELS_DIR, else $XDG_CACHE_HOME/asr/models,
 * else $HOME/.cache/asr/models. Returns 0, or -1 (with a message on stderr)
 * when no directory can be named or it does not fit in cap. */
int asr_cli_models_dir(char *out, size_t cap);

/* Resolve a --model argument: NULL means ASR_CLI_DEFAULT_MODEL; a bare name
 * (no '/') is the cache's model of that name when the cache has one, else an
 * existing file or directory of that name; anything else is used as a path. Writes the path to out and returns 0, or prints why
 * nothing was found (with the `asr models pull` hint) on stderr and returns
 * -1. Honouring ASR_MODEL is the caller's job. */
int asr_cli_resolve_model(const char *name_or_path, char *out, size_t cap);

#endif
