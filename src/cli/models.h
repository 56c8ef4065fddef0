/* models.h — `asr models pull|list|path|info`, and the CLI's way to resolve
 * a --model argument (the catalogue's resolver, printing its error). */
#ifndef ASR_CLI_MODELS_H
#define ASR_CLI_MODELS_H

#include "catalog/catalog.h"

#include <stddef.h>

/* Default model name when neither --model nor ASR_MODEL is given. */
#define ASR_CLI_DEFAULT_MODEL ASR_CATALOG_DEFAULT_MODEL

/* `asr models SUBCOMMAND ...`; argv[0] is "models". Prints to stdout/stderr
 * and returns the process exit status (0 ok, 1 failure, 2 usage error). */
int asr_cli_models(int argc, char **argv);

/* asr_catalog_models_dir; returns 0, or -1 with the message on stderr. */
int asr_cli_models_dir(char *out, size_t cap);

/* asr_catalog_resolve (a cache name, hf:ORG/REPO, or a path); writes the
 * path to out and returns 0, or prints why nothing was found (with the
 * `asr models pull` hint) on stderr and returns -1. Honouring ASR_MODEL is
 * the caller's job. */
int asr_cli_resolve_model(const char *name_or_path, char *out, size_t cap);

#endif
