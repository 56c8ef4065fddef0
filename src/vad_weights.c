/* vad_weights.c — the Silero VAD v6 weight file (models/silero_vad_v6.bin) built into the library. */
#include "vad.h"

/* The assembler copies the file in at build time (make runs from the
 * repository root, the path is relative to it); 16-byte alignment lets the
 * loader point its float tensors straight into the bytes. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".globl asr_vad_builtin_data\n"
        "asr_vad_builtin_data:\n"
        ".incbin \"models/silero_vad_v6.bin\"\n"
        ".globl asr_vad_builtin_end\n"
        "asr_vad_builtin_end:\n"
        ".byte 0\n"
        ".previous\n");
