/* model_pack.c - the decoder's weights, repacked once at load for the
 * few-row products of a decoding step (packed.c says why).
 *
 * The packed copies replace the checkpoint's tensors for decoding, so the
 * pages of the originals are handed back (vgpt_ckpt_drop_pages): the process
 * holds one copy of the decoder weights, not two.  tok_emb stays readable
 * for the embedding lookup, read one row at a time (vgpt_model_token_row). */
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* fp16 weights (an fp16 checkpoint's, widened at load) are held and
 * streamed as fp16: exact, half the memory and half the bytes per step. */
static int narrow(vgpt_model *m, vgpt_packed *dst, vgpt_err *err, const char *what, int j) {
    if (vgpt_pack_narrow(dst) >= 0) return 0;
    if (j < 0) return vgpt_err_set(err, "%s: out of memory packing %s", vgpt_ckpt_path(m->ckpt), what);
    return vgpt_err_set(err, "%s: out of memory packing trf_blocks.%d %s", vgpt_ckpt_path(m->ckpt), j, what);
}

static int pack(vgpt_model *m, vgpt_packed *dst, int n, vgpt_lin *const *lins, vgpt_err *err,
                const char *what, int j) {
    const float *w[3] = {0}, *b[3] = {0};
    int rows[3] = {0};
    for (int i = 0; i < n; i++) {
        if (vgpt_model_widen(m, &lins[i]->w, err)) return -1;
        w[i] = lins[i]->w;
        b[i] = lins[i]->b;
        rows[i] = lins[i]->out;
    }
    if (m->precision == VGPT_BF16) {
        *dst = (vgpt_packed){.C = lins[0]->in, .mm = vgpt_mm_new(m->mm_ctx, lins[0]->in, n, w, b, rows, err)};
        for (int i = 0; i < n; i++) dst->OC += rows[i];
        if (!dst->mm) return vgpt_err_prefix(err, "%s: trf_blocks.%d %s", vgpt_ckpt_path(m->ckpt), j, what);
    } else if (n == 1 && vgpt_model_take_owned(m, w[0])) { /* a widened copy: packed where it lies */
        if (vgpt_pack_in_place(dst, lins[0]->in, (float *)w[0], b[0], rows[0])) {
            free((void *)w[0]);
            return vgpt_err_set(err, "%s: out of memory packing trf_blocks.%d %s", vgpt_ckpt_path(m->ckpt), j, what);
        }
        lins[0]->w = NULL;
        return narrow(m, dst, err, what, j);
    } else if (vgpt_pack(dst, lins[0]->in, n, w, b, rows)) {
        return vgpt_err_set(err, "%s: out of memory packing trf_blocks.%d %s", vgpt_ckpt_path(m->ckpt), j, what);
    }
    for (int i = 0; i < n; i++) vgpt_model_drop_weight(m, &lins[i]->w, (size_t)lins[i]->out * lins[i]->in);
    return narrow(m, dst, err, what, j);
}

static int pack_block(vgpt_model *m, vgpt_block *blk, int j, vgpt_err *err) {
    vgpt_lin *qkv[3] = {&blk->q, &blk->k, &blk->v}, *proj = &blk->proj, *fc1 = &blk->fc1, *fc2 = &blk->fc2;
    if (blk->is_cross) return pack(m, &blk->packed_qkv, 1, qkv, err, "att.W_query", j) ||
                              pack(m, &blk->packed_proj, 1, &proj, err, "att.out_proj", j);
    vgpt_lin *xq = &blk->xq, *xproj = &blk->xproj;
    if (blk->in_cross && (pack(m, &blk->packed_xq, 1, &xq, err, "crossattention.q_attn", j) ||
                          pack(m, &blk->packed_xproj, 1, &xproj, err, "crossattention.c_proj", j)))
        return -1;
    return pack(m, &blk->packed_qkv, 3, qkv, err, "att.W_query/W_key/W_value", j) ||
           pack(m, &blk->packed_proj, 1, &proj, err, "att.out_proj", j) ||
           pack(m, &blk->packed_fc1, 1, &fc1, err, "ff.layers.0", j) ||
           pack(m, &blk->packed_fc2, 1, &fc2, err, "ff.layers.2", j);
}

static int pack_head(vgpt_model *m, vgpt_err *err) {
    vgpt_gpt *g = &m->gpt;
    if (m->tied) { /* the head is tok_emb: widened, if it is narrow, for the packing only */
        if (vgpt_model_widen(m, &g->tok_emb, err)) return -1;
        g->out_head = g->tok_emb;
    } else if (vgpt_model_widen(m, &g->out_head, err)) {
        return -1;
    }
    const float *head = g->out_head;
    int vocab = g->vocab;
    if (m->precision == VGPT_BF16) {
        g->packed_head = (vgpt_packed){.C = g->width, .OC = vocab, .mm = vgpt_mm_new(m->mm_ctx, g->width, 1, &head, NULL, &vocab, err)};
        if (!g->packed_head.mm) return vgpt_err_prefix(err, "%s: out_head", vgpt_ckpt_path(m->ckpt));
    } else if (!m->tied && vgpt_model_take_owned(m, head)) { /* a widened copy: packed where it lies */
        g->out_head = NULL;
        if (vgpt_pack_in_place(&g->packed_head, g->width, (float *)head, NULL, vocab)) {
            free((void *)head);
            return vgpt_err_set(err, "%s: out of memory packing out_head", vgpt_ckpt_path(m->ckpt));
        }
        return narrow(m, &g->packed_head, err, "out_head", -1);
    } else if (vgpt_pack(&g->packed_head, g->width, 1, &head, NULL, &vocab)) {
        return vgpt_err_set(err, "%s: out of memory packing out_head", vgpt_ckpt_path(m->ckpt));
    }
    if (m->tied)
        vgpt_ckpt_drop_pages(m->ckpt, head, (size_t)vocab * g->width * sizeof(float)); /* tok_emb stays */
    else
        vgpt_model_drop_weight(m, &g->out_head, (size_t)vocab * g->width);
    return narrow(m, &g->packed_head, err, "out_head", -1);
}

/* A narrow tok_emb with contiguous rows is never held widened: lookups
 * widen one row from the file (vgpt_model_token_row); a copy widened for
 * a tied head's packing goes once the head is packed. */
static void tokens_by_row(vgpt_model *m) {
    vgpt_gpt *g = &m->gpt;
    vgpt_deferred *d = (vgpt_deferred *)vgpt_model_deferred(m, &g->tok_emb);
    if (!d || d->view.dtype == VGPT_DT_F32 || d->view.stride[1] != 1 || d->view.stride[0] != g->width) return;
    if (d->state == VGPT_DEFER_WIDENED) vgpt_model_free_owned(m, g->tok_emb);
    g->tok_emb = NULL;
    if (m->tied) g->out_head = NULL; /* packed: a decoding step reads packed_head */
    d->state = VGPT_DEFER_ROWS;
    m->tok_rows = &d->view; /* the deferred list no longer grows */
}

/* The head first: the largest matrix is widened (from a narrow checkpoint)
 * while little else is resident, so the load's peak is the weights' held
 * size plus one block's matrix, not plus the head. */
int vgpt_model_pack_decoder(vgpt_model *m, vgpt_err *err) {
    vgpt_gpt *g = &m->gpt;
    if (pack_head(m, err)) return -1;
    tokens_by_row(m);
    for (int j = 0; j < g->n_blocks; j++)
        if (pack_block(m, &g->blocks[j], j, err)) return -1;
    return 0;
}

void vgpt_model_unpack_decoder(vgpt_model *m) {
    vgpt_gpt *g = &m->gpt;
    for (int j = 0; j < g->n_blocks; j++) {
        vgpt_block *blk = &g->blocks[j];
        vgpt_packed *all[] = {&blk->packed_qkv, &blk->packed_proj, &blk->packed_fc1, &blk->packed_fc2,
                              &blk->packed_xq, &blk->packed_xproj};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) vgpt_packed_free(all[i]);
    }
    vgpt_packed_free(&g->packed_head);
}
