/* model_info.c — read-only facts about a loaded model: shapes, source format, storage. */
#include "model.h"

void asr_model_get_info(const asr_model *m, asr_model_info *info)
{
    const asr_hparams *hp = &m->hp;
    *info = (asr_model_info){
        .type = m->type,
        .format = m->source_format,
        .compute_type = asr_model_compute_type(m),
        .multilingual = m->multilingual,
        .n_mels = hp->n_mels,
        .n_audio_ctx = hp->n_audio_ctx,
        .n_audio_state = hp->n_audio_state,
        .n_audio_head = hp->n_audio_head,
        .n_audio_layer = hp->n_audio_layer,
        .n_vocab = hp->n_vocab,
        .n_text_ctx = hp->n_text_ctx,
        .n_text_state = hp->n_text_state,
        .n_text_head = hp->n_text_head,
        .n_text_layer = hp->n_text_layer,
        .weight_bytes = m->weight_bytes,
    };
}
