/* seq.c -- training the sequential two-tower network of seq.h: the
 * forward pass is the shared one (src/model/seq.c); this file adds the
 * backward pass, full-softmax next-item loss and AdamW. */
#include "hr/train.h"

#include "hr/nn.h"
#include "seq_enc.h"
#include "util.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hr_seq_opts_default(hr_seq_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->dims.d = 64;
  o->dims.L = 200;
  o->dims.blocks = 2;
  o->dims.ffn = 64;
  o->dims.n_gap = HR_SEQ_GAPS;
  o->dims.enc = HR_SEQ_TRANSFORMER;
  o->dims.win = 5; /* Caser's L, d_v 4 and d_h 16 */
  o->dims.nh = 16;
  o->dims.nv = 4;
  o->epochs = 40;
  o->batch = 64;
  o->lr = 2e-3f;
  o->weight_decay = 0.0f;
  o->clip = 5.0f;
  o->init_std = 0.05f;
  o->dropout = 0.3f; /* chosen on loo valid: 0.1261 vs 0.1250 at 0.2 */
  o->block_dropout = 0.0f;
  o->threads = 2;
  o->seed = 1;
  o->prior = 1e-4f;
  o->negatives = -1;
  o->long_term = 6.0f; /* chosen on loo valid: 0.1383 vs 0.1261 without */
  hr_ials_opts_default(&o->lt_opts);
  o->lt_opts.index = 0;
  o->id_dropout = 0.5f; /* with item attributes (tokens) only */
  o->index = 1;
  hr_ann_params_default(&o->ann);
}

static void init_params(const hr_seq_dims_t *dm, hr_seq_params_t *p,
                        float std, uint64_t seed) {
  uint64_t s = seed;
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn;
  for (size_t i = 0; i < (size_t)dm->n_items * d; i++)
    p->item[i] = std * (float)hr__gauss(&s);
  for (size_t i = 0; dm->enc == HR_SEQ_TRANSFORMER && i < (size_t)dm->L * d;
       i++)
    p->pos[i] = std * (float)hr__gauss(&s);
  for (size_t i = 0; i < (size_t)dm->n_gap * d; i++) {
    p->gin[i] = std * (float)hr__gauss(&s);
    p->gq[i] = 0.0f;
  }
  for (int b = 0; b < dm->blocks; b++) {
    hr_seq_block_t *k = &p->blk[b];
    float sd = 1.0f / sqrtf((float)d), sf = 1.0f / sqrtf((float)f);
    for (size_t i = 0; i < d; i++) {
      k->ln1g[i] = k->ln2g[i] = 1.0f;
      k->ln1b[i] = k->ln2b[i] = k->bo[i] = k->b2[i] = 0.0f;
    }
    for (size_t i = 0; i < f; i++)
      k->b1[i] = 0.0f;
    for (size_t i = 0; i < d * d; i++) {
      k->wq[i] = sd * (float)hr__gauss(&s);
      k->wk[i] = sd * (float)hr__gauss(&s);
      k->wv[i] = sd * (float)hr__gauss(&s);
      k->wo[i] = sd * (float)hr__gauss(&s);
    }
    for (size_t i = 0; i < d * f; i++)
      k->w1[i] = sd * (float)hr__gauss(&s);
    for (size_t i = 0; i < f * d; i++)
      k->w2[i] = sf * (float)hr__gauss(&s);
  }
  hr__seq_enc_init(dm, p, &s);
  for (size_t i = 0; i < d; i++) {
    p->lnfg[i] = 1.0f;
    p->lnfb[i] = 0.0f;
  }
}

/* The training sequences: per user the last L+1 items, as L inputs and
 * L targets (shorter users: all they have, at least 2 items). */
typedef struct {
  size_t n;          /* sequences */
  size_t *start;     /* into h->items, the first input */
  size_t *first;     /* the user's first item */
  int *len;          /* inputs (= targets) */
} seqs_t;

static int make_seqs(const hr_csr_t *h, int L, seqs_t *q) {
  q->n = 0;
  q->start = malloc(sizeof(size_t) * (h->n_users + 1));
  q->len = malloc(sizeof(int) * (h->n_users + 1));
  q->first = malloc(sizeof(size_t) * (h->n_users + 1));
  if (q->start == NULL || q->len == NULL || q->first == NULL)
    return HR_ENOMEM;
  for (size_t u = 0; u < h->n_users; u++) {
    size_t n = (size_t)(h->ptr[u + 1] - h->ptr[u]);
    if (n < 2)
      continue;
    size_t m = n - 1 > (size_t)L ? (size_t)L : n - 1;
    q->start[q->n] = (size_t)h->ptr[u + 1] - m - 1;
    q->first[q->n] = (size_t)h->ptr[u];
    q->len[q->n] = (int)m;
    q->n++;
  }
  return 0;
}

/* Work buffers for one batch of at most max_seqs sequences of L rows. */
struct hr_seq_work {
  size_t R;
  int max_seqs;
  float *acts;
  float *logits;               /* R x n_items, then its gradient */
  float *dy, *dx, *dh, *dO, *dq, *dk, *dv, *da, *df, *dc, *work;
  float *u;                    /* R x d user vectors (y + gq) */
  float *enc;                  /* the GRU's or CNN's backward scratch */
  int *blen;
  /* the batch being processed (borrowed) */
  const int32_t *inp, *tgt, *gin, *qg;
  const float *mask;
  /* sampled softmax (neg > 0): each row's target against `neg` items
   * drawn uniformly for the batch (hr_seq_work_negatives) */
  int neg;
  /* context rows added to the user vectors (hr_seq_work_context) */
  const float *C;
  float *gC;
  const int32_t *crow;
  int cslots;
  uint64_t neg_seed;
  int32_t *negs, *zeros;       /* neg ids; R zero targets */
  int32_t *excl;               /* items kept out of the softmax */
  size_t n_excl;
  const unsigned char *is_excl;
  float *E, *gE;               /* neg x d: their vectors, their gradient */
};
typedef struct hr_seq_work work_t;

/* Backward of one batch; activations in a, dlogits in w->logits. Adds
 * into the gradient views g. */
static void backward(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                     const hr_seq_params_t *g, const hr_seq_acts_t *a,
                     const size_t *off, size_t ns, const int *len,
                     work_t *w) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, R = off[ns];
  int n_items = dm->n_items;
  float scale = 1.0f / sqrtf((float)d);
  size_t psz = 0;

  for (size_t s = 0; s < ns; s++)
    psz += (size_t)len[s] * (size_t)len[s];
  if (w->neg > 0) {
    /* logits[r] = (u_r . item[tgt_r], u_r . E_k ...): column 0 is the
     * target, the rest the shared negatives */
    int C = w->neg + 1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)d,
                w->neg, 1.0f, w->logits + 1, C, w->E, (int)d, 0.0f, w->dy,
                (int)d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, w->neg, (int)d,
                (int)R, 1.0f, w->logits + 1, C, w->u, (int)d, 0.0f, w->gE,
                (int)d);
    for (size_t r = 0; r < R; r++) {
      float gl = w->logits[r * (size_t)C];
      const float *it = p->item + (size_t)w->tgt[r] * d;
      float *gi = g->item + (size_t)w->tgt[r] * d;
      for (size_t c = 0; c < d; c++) {
        w->dy[r * d + c] += gl * it[c];
        gi[c] += gl * w->u[r * d + c];
      }
    }
    for (int k = 0; k < w->neg; k++)
      for (size_t c = 0; c < d; c++)
        g->item[(size_t)w->negs[k] * d + c] += w->gE[(size_t)k * d + c];
  } else {
    /* logits = y item^T: dy = dlogits item, ditem += dlogits^T y */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)d,
                n_items, 1.0f, w->logits, n_items, p->item, (int)d, 0.0f,
                w->dy, (int)d);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_items, (int)d,
                (int)R, 1.0f, w->logits, n_items, w->u, (int)d, 1.0f,
                g->item, (int)d);
  }
  if (dm->n_gap > 0 && w->qg != NULL) /* u = y + gq[qg] */
    for (size_t r = 0; r < R; r++)
      for (size_t c = 0; c < d; c++)
        g->gq[(size_t)w->qg[r] * d + c] += w->dy[r * d + c];
  if (w->gC != NULL) /* ... + the context rows C[crow] */
    for (size_t r = 0; r < R; r++)
      for (int k = 0; k < w->cslots; k++) {
        int32_t row = w->crow[r * (size_t)w->cslots + (size_t)k];
        if (row >= 0)
          for (size_t c = 0; c < d; c++)
            w->gC[(size_t)row * d + c] += w->dy[r * d + c];
      }
  memset(w->dx, 0, sizeof(float) * R * d);
  hr_nn_layernorm_bwd(a->xl, R, (int)d, p->lnfg, a->muf, a->rsf, w->dy, w->dx,
                      g->lnfg, g->lnfb);
  for (int b = dm->blocks - 1; b >= 0; b--) {
    const hr_seq_block_t *k = &p->blk[b];
    const hr_seq_block_t *gk = &g->blk[b];
    const hr_seq_block_acts_t *ab = &a->b[b];
    /* out = h + m_f * (relu(c W1 + b1) W2 + b2) */
    memcpy(w->dh, w->dx, sizeof(float) * R * d);
    if (w->mask != NULL) {
      const float *mf = w->mask + (size_t)(2 + 2 * b) * R * d;
      for (size_t i = 0; i < R * d; i++)
        w->dx[i] *= mf[i];
    }
    memset(w->df, 0, sizeof(float) * R * f);
    hr_nn_linear_bwd(ab->f1, R, (int)f, (int)d, k->w2, w->dx, w->df, gk->w2,
                     gk->b2);
    /* relu in place: zero the gradient where the output was 0 */
    for (size_t i = 0; i < R * f; i++)
      if (!(ab->f1[i] > 0))
        w->df[i] = 0;
    memset(w->dc, 0, sizeof(float) * R * d);
    hr_nn_linear_bwd(ab->c, R, (int)d, (int)f, k->w1, w->df, w->dc, gk->w1,
                     gk->b1);
    hr_nn_layernorm_bwd(ab->h, R, (int)d, k->ln2g, ab->mu2, ab->rs2, w->dc,
                        w->dh, gk->ln2g, gk->ln2b);
    /* h = x + m_a * (o Wo + bo) */
    memcpy(w->dx, w->dh, sizeof(float) * R * d);
    if (w->mask != NULL) {
      const float *ma = w->mask + (size_t)(1 + 2 * b) * R * d;
      for (size_t i = 0; i < R * d; i++)
        w->dh[i] *= ma[i];
    }
    memset(w->dO, 0, sizeof(float) * R * d);
    hr_nn_linear_bwd(ab->o, R, (int)d, (int)d, k->wo, w->dh, w->dO, gk->wo,
                     gk->bo);
    memset(w->dq, 0, sizeof(float) * R * d);
    memset(w->dk, 0, sizeof(float) * R * d);
    memset(w->dv, 0, sizeof(float) * R * d);
    const float *pb = a->p + (size_t)b * psz;
    for (size_t s = 0; s < ns; s++) {
      hr_nn_attn_bwd(ab->q + off[s] * d, ab->k + off[s] * d,
                     ab->v + off[s] * d, pb, len[s], (int)d, (int)d, 0, scale,
                     w->dO + off[s] * d, w->dq + off[s] * d,
                     w->dk + off[s] * d, w->dv + off[s] * d, w->work);
      pb += (size_t)len[s] * (size_t)len[s];
    }
    memset(w->da, 0, sizeof(float) * R * d);
    hr_nn_linear_bwd(ab->a, R, (int)d, (int)d, k->wq, w->dq, w->da, gk->wq,
                     NULL);
    hr_nn_linear_bwd(ab->a, R, (int)d, (int)d, k->wk, w->dk, w->da, gk->wk,
                     NULL);
    hr_nn_linear_bwd(ab->a, R, (int)d, (int)d, k->wv, w->dv, w->da, gk->wv,
                     NULL);
    hr_nn_layernorm_bwd(ab->x, R, (int)d, k->ln1g, ab->mu1, ab->rs1, w->da,
                        w->dx, gk->ln1g, gk->ln1b);
  }
  if (dm->enc != HR_SEQ_TRANSFORMER)
    hr__seq_enc_bwd(dm, p, g, a, off, ns, w->dx, w->enc);
  /* x0 = dropout(item[inp] + pos[t] + gin[gap]) (no pos: GRU, CNN) */
  for (size_t s = 0; s < ns; s++)
    for (size_t r = off[s]; r < off[s + 1]; r++) {
      float *gi = g->item + (size_t)w->inp[r] * d,
            *gp = dm->enc == HR_SEQ_TRANSFORMER ? g->pos + (r - off[s]) * d
                                                : NULL;
      const float *dx = w->dx + r * d,
                  *mk = w->mask ? w->mask + r * d : NULL;
      float *gg = dm->n_gap > 0 && w->gin ? g->gin + (size_t)w->gin[r] * d
                                          : NULL;
      for (size_t c = 0; c < d; c++) {
        float v = mk ? dx[c] * mk[c] : dx[c];
        gi[c] += v;
        if (gp)
          gp[c] += v;
        if (gg)
          gg[c] += v;
      }
    }
}

hr_seq_work_t *hr_seq_work_new(const hr_seq_dims_t *dm, int max_seqs) {
  work_t *w = calloc(1, sizeof(*w));
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, maxR, acts_n;
  if (w == NULL || max_seqs < 1)
    return (free(w), NULL);
  maxR = (size_t)max_seqs * (size_t)dm->L;
  w->blen = malloc(sizeof(int) * (size_t)max_seqs);
  if (w->blen == NULL)
    return (free(w), NULL);
  for (int i = 0; i < max_seqs; i++)
    w->blen[i] = dm->L;
  acts_n = hr_seq_acts_floats(dm, maxR, w->blen, (size_t)max_seqs);
  w->R = maxR;
  w->max_seqs = max_seqs;
  w->acts = malloc(sizeof(float) * acts_n);
  w->logits = NULL; /* sized by the loss: hr_seq_work_negatives */
  w->dy = malloc(sizeof(float) * maxR * d);
  w->dx = malloc(sizeof(float) * maxR * d);
  w->dh = malloc(sizeof(float) * maxR * d);
  w->dO = malloc(sizeof(float) * maxR * d);
  w->dq = malloc(sizeof(float) * maxR * d);
  w->dk = malloc(sizeof(float) * maxR * d);
  w->dv = malloc(sizeof(float) * maxR * d);
  w->da = malloc(sizeof(float) * maxR * d);
  w->dc = malloc(sizeof(float) * maxR * d);
  w->df = malloc(sizeof(float) * maxR * f);
  w->u = malloc(sizeof(float) * maxR * d);
  w->work = malloc(sizeof(float) * (size_t)dm->L * (size_t)dm->L);
  w->enc = malloc(sizeof(float) * (hr__seq_enc_work_floats(dm, maxR) + 1));
  if (!w->enc || !w->acts || !w->dy || !w->dx || !w->dh || !w->dO ||
      !w->dq || !w->dk || !w->dv || !w->da || !w->dc || !w->df || !w->u ||
      !w->work) {
    hr_seq_work_free(w);
    return NULL;
  }
  return w;
}

void hr_seq_work_free(hr_seq_work_t *w) {
  if (w == NULL)
    return;
  free(w->acts);
  free(w->logits);
  free(w->dy);
  free(w->dx);
  free(w->dh);
  free(w->dO);
  free(w->dq);
  free(w->dk);
  free(w->dv);
  free(w->da);
  free(w->dc);
  free(w->df);
  free(w->u);
  free(w->work);
  free(w->enc);
  free(w->blen);
  free(w->negs);
  free(w->zeros);
  free(w->E);
  free(w->gE);
  free(w->excl);
  free(w);
}

int hr_seq_work_negatives(hr_seq_work_t *w, const hr_seq_dims_t *dm,
                          int neg, uint64_t seed) {
  size_t C = neg > 0 ? (size_t)neg + 1 : (size_t)dm->n_items;
  float *lg = malloc(sizeof(float) * w->R * C);
  if (lg == NULL)
    return HR_ENOMEM;
  free(w->logits);
  w->logits = lg;
  free(w->negs);
  free(w->zeros);
  free(w->E);
  free(w->gE);
  w->negs = NULL;
  w->zeros = NULL;
  w->E = w->gE = NULL;
  w->neg = 0;
  if (neg <= 0)
    return 0;
  w->negs = malloc(sizeof(int32_t) * (size_t)neg);
  w->zeros = calloc(w->R, sizeof(int32_t));
  w->E = malloc(sizeof(float) * (size_t)neg * (size_t)dm->d);
  w->gE = malloc(sizeof(float) * (size_t)neg * (size_t)dm->d);
  if (!w->negs || !w->zeros || !w->E || !w->gE)
    return HR_ENOMEM;
  w->neg = neg;
  w->neg_seed = seed;
  return 0;
}

void hr_seq_work_seed(hr_seq_work_t *w, uint64_t seed) { w->neg_seed = seed; }

void hr_seq_work_context(hr_seq_work_t *w, const float *C, float *gC,
                         const int32_t *crow, int slots) {
  w->C = slots > 0 ? C : NULL;
  w->gC = slots > 0 ? gC : NULL;
  w->crow = crow;
  w->cslots = slots;
}

int hr_seq_work_exclude(hr_seq_work_t *w, const unsigned char *excl,
                        size_t n_items) {
  size_t n = 0;
  free(w->excl);
  w->excl = NULL;
  w->n_excl = 0;
  w->is_excl = NULL;
  if (excl == NULL)
    return 0;
  for (size_t i = 0; i < n_items; i++)
    n += excl[i] != 0;
  w->excl = malloc(sizeof(int32_t) * (n + 1));
  if (w->excl == NULL)
    return HR_ENOMEM;
  for (size_t i = 0; i < n_items; i++)
    if (excl[i])
      w->excl[w->n_excl++] = (int32_t)i;
  w->is_excl = excl;
  return 0;
}

double hr_seq_batch_grad(const hr_seq_dims_t *dm, float *params,
                         const int32_t *inp, const int32_t *tgt,
                         const int32_t *gin, const int32_t *qg,
                         const size_t *off, size_t ns, const float *mask,
                         float *grad, hr_seq_work_t *w) {
  size_t d = (size_t)dm->d, R = off[ns];
  hr_seq_params_t p, g;
  hr_seq_acts_t a;
  double loss;

  if (w->logits == NULL && hr_seq_work_negatives(w, dm, 0, 0) != 0)
    return NAN; /* the full softmax's R x n_items buffer */
  hr_seq_bind(dm, params, &p);
  if (grad != NULL)
    hr_seq_bind(dm, grad, &g);
  for (size_t s = 0; s < ns; s++)
    w->blen[s] = (int)(off[s + 1] - off[s]);
  w->inp = inp;
  w->tgt = tgt;
  w->gin = gin;
  w->qg = qg;
  w->mask = mask;
  hr_seq_acts_bind(dm, R, w->blen, ns, w->acts, &a);
  hr_seq_forward(dm, &p, inp, gin, off, ns, mask, &a);
  for (size_t r = 0; r < R; r++) {
    hr_seq_user_out(dm, &p, a.y + r * d, qg ? qg[r] : 0, w->u + r * d);
    for (int k = 0; w->C != NULL && k < w->cslots; k++) {
      int32_t row = w->crow[r * (size_t)w->cslots + (size_t)k];
      if (row >= 0)
        hr_seq_add_context(w->u + r * d, w->C + (size_t)row * d, d);
    }
  }
  if (w->neg > 0) {
    /* Sampled softmax: the target (column 0) against neg items drawn
     * uniformly (shared by the batch's rows). Uniform draws need no log-q
     * correction (it is the same constant for every column); a draw equal
     * to the row's target is masked out. */
    int C = w->neg + 1;
    uint64_t rs = w->neg_seed;
    for (int k = 0; k < w->neg; k++) {
      w->negs[k] = (int32_t)(hr__sm64(&rs) % (uint64_t)dm->n_items);
      memcpy(w->E + (size_t)k * d, p.item + (size_t)w->negs[k] * d,
             sizeof(float) * d);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, w->neg,
                (int)d, 1.0f, w->u, (int)d, w->E, (int)d, 0.0f,
                w->logits + 1, C);
    for (size_t r = 0; r < R; r++) {
      float *lr = w->logits + r * (size_t)C, t = 0;
      const float *it = p.item + (size_t)tgt[r] * d;
      for (size_t c = 0; c < d; c++)
        t += w->u[r * d + c] * it[c];
      lr[0] = t;
      for (int k = 0; k < w->neg; k++)
        if (w->negs[k] == tgt[r] ||
            (w->is_excl != NULL && w->is_excl[w->negs[k]]))
          lr[1 + k] = -1e30f;
    }
    loss = hr_nn_softmax_xent(w->logits, R, C, w->zeros, 1.0f / (float)R,
                              w->logits);
  } else {
    /* logits = u item^T, then the loss gradient in place */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, dm->n_items,
                (int)d, 1.0f, w->u, (int)d, p.item, (int)d, 0.0f, w->logits,
                dm->n_items);
    for (size_t r = 0; r < R; r++)
      for (size_t k = 0; k < w->n_excl; k++)
        w->logits[r * (size_t)dm->n_items + (size_t)w->excl[k]] = -1e30f;
    loss = hr_nn_softmax_xent(w->logits, R, dm->n_items, tgt,
                              1.0f / (float)R, w->logits);
  }
  if (grad != NULL)
    backward(dm, &p, &g, &a, off, ns, w->blen, w);
  return R ? loss / (double)R : 0;
}

/* Set by openblas; declared here to avoid depending on its header name. */
void openblas_set_num_threads(int n);

/* The item tower: item[i] = (cold[i] ? 0 : eid[i]) + sum_k w_k attr[tok_k]
 * for each item (eid may alias item). */
static void compose_items(const hr_item_tokens_t *t, size_t d,
                          const float *eid, const float *attr,
                          const unsigned char *cold, float *item) {
  for (size_t i = 0; i < t->n_items; i++) {
    float *x = item + i * d;
    const float *e = eid + i * d;
    for (size_t c = 0; c < d; c++)
      x[c] = cold && cold[i] ? 0.0f : e[c];
    for (uint64_t k = t->ptr[i]; k < t->ptr[i + 1]; k++) {
      const float *a = attr + (size_t)t->tok[k] * d;
      for (size_t c = 0; c < d; c++)
        x[c] += t->w[k] * a[c];
    }
  }
}

/* d attr += A^T d item (the item tower's backward). */
static void compose_items_bwd(const hr_item_tokens_t *t, size_t d,
                              const float *ditem, float *dattr) {
  for (size_t i = 0; i < t->n_items; i++)
    for (uint64_t k = t->ptr[i]; k < t->ptr[i + 1]; k++) {
      float *g = dattr + (size_t)t->tok[k] * d;
      for (size_t c = 0; c < d; c++)
        g[c] += t->w[k] * ditem[i * d + c];
    }
}

/* [v^1 | ... | v^n] item rows and context rows of the first n members
 * (member 0's own arrays when n is 1). */
static int assemble(hr_seq_fit_t *f, int n) {
  size_t d = (size_t)f->dims.d, ni = (size_t)f->dims.n_items;
  free(f->items_cat);
  free(f->ctx_cat);
  f->items_cat = f->ctx_cat = NULL;
  f->width = n * f->dims.d;
  f->items = f->m[0].p.item;
  f->ctx = f->m[0].ctx;
  if (n == 1)
    return 0;
  f->items_cat = malloc(sizeof(float) * ni * d * (size_t)n);
  if (f->items_cat == NULL ||
      (f->m[0].ctx != NULL &&
       (f->ctx_cat = malloc(sizeof(float) * f->n_ctx * d * (size_t)n + 1)) ==
           NULL))
    return HR_ENOMEM;
  for (int k = 0; k < n; k++) {
    for (size_t i = 0; i < ni; i++)
      memcpy(f->items_cat + (i * (size_t)n + (size_t)k) * d,
             f->m[k].p.item + i * d, sizeof(float) * d);
    for (size_t r = 0; f->ctx_cat != NULL && r < f->n_ctx; r++)
      memcpy(f->ctx_cat + (r * (size_t)n + (size_t)k) * d,
             f->m[k].ctx + r * d, sizeof(float) * d);
  }
  f->items = f->items_cat;
  f->ctx = f->ctx_cat;
  return 0;
}

/* What the members share while they train: the progress report, and in
 * parallel mode the lock around it and around o->validate. */
typedef struct {
  const hr_csr_t *h;
  const hr_seq_opts_t *o;
  hr_seq_fit_t *all;
  hr_progress_t pg;
  int parallel;            /* members train on threads of their own */
  int threads;             /* OpenBLAS threads of each member */
  int epochs_done;         /* member-epochs reported so far */
  int failed;              /* a member failed: the others stop (set and
                              read under mu) */
  double t0;               /* when training began */
  int workers;             /* members training at once */
  int cap;                 /* epochs of every member (set by the
                              deadline; under mu) */
  double t1;               /* when every worker had done one epoch */
  int d1;                  /* epochs_done then */
  pthread_mutex_t mu;
} members_t;

#define MEMBER_STOPPED 1   /* fit_member: stopped because another failed */

/* The deadline's cap on every member's epochs, once every worker has
 * done two: as many as end by it at the rate since every worker's first
 * epoch (the first has the set-up in it), at most the epochs asked; it is
 * set again after each epoch. HR_ETIMEOUT when that is under half of the
 * epochs asked. Under the lock. */
static int deadline_cap(members_t *c) {
  const hr_seq_opts_t *o = c->o;
  int n = o->members > 0 ? o->members : 1;
  double now = hr__now_s();
  if (o->deadline <= 0)
    return 0;
  if (c->d1 == 0 && c->epochs_done >= c->workers) {
    c->t1 = now;
    c->d1 = c->epochs_done;
  }
  if (c->d1 == 0 || c->epochs_done < c->d1 + c->workers)
    return 0;
  /* epochs_done counts every worker's: the rate is across them */
  double per = (now - c->t1) / (c->epochs_done - c->d1);
  double fit = (c->epochs_done + (o->deadline - now) / per) / n;
  if (fit < (o->epochs + 1) / 2)
    return HR_ETIMEOUT;
  c->cap = fit >= o->epochs ? o->epochs : (int)fit;
  return 0;
}

/* After an epoch of member k (loss): the metrics of o->validate and the
 * progress line. In order, a member is validated with the members before
 * it (the ensemble so far); in parallel, alone, under the lock. The time
 * this takes (waiting for the lock too) is added to *spent; *cap gets
 * the members' epochs (deadline_cap). 0, MEMBER_STOPPED, HR_ETIMEOUT or
 * HR_ENOMEM. */
static int member_epoch(members_t *c, int k, double loss, double *spent,
                        int *cap) {
  const hr_seq_opts_t *o = c->o;
  hr_seq_fit_t *all = c->all;
  double m[2], v0, w0 = hr__now_s();
  int nm = 0, rc = 0;

  if (c->parallel)
    pthread_mutex_lock(&c->mu);
  v0 = hr__now_s();
  if (o->validate != NULL && c->parallel) {
    hr_seq_fit_t v = {0};
    v.dims = all->dims;
    v.members = 1;
    v.width = all->dims.d;
    v.m[0] = all->m[k];
    v.items = all->m[k].p.item;
    v.ctx = all->m[k].ctx;
    v.n_ctx = all->n_ctx;
    nm = o->validate(o->validate_arg, &v, m);
  } else if (o->validate != NULL) {
    all->members = k + 1;
    if ((rc = assemble(all, k + 1)) == 0)
      nm = o->validate(o->validate_arg, all, m);
  }
  hr_progress_epoch(&c->pg, c->epochs_done++, loss, m, nm,
                    hr__now_s() - v0);
  if (rc == 0 && c->failed)
    rc = MEMBER_STOPPED;
  if (rc == 0)
    rc = deadline_cap(c);
  *cap = c->cap;
  if (c->parallel)
    pthread_mutex_unlock(&c->mu);
  *spent += hr__now_s() - w0;
  return rc;
}

/* One member's training state: its optimiser, its batches' buffers, the
 * item tower's and the context features' parts of the parameter vector. */
typedef struct {
  members_t *c;
  const hr_csr_t *h;
  const hr_seq_opts_t *o;
  hr_seq_dims_t dm;
  hr_seq_member_t *me;
  const hr_item_tokens_t *tk; /* the item tower, or NULL */
  size_t np, na, nc, nt;      /* network, tokens, context: nt floats */
  size_t ni, maxR, n_cold;
  float *grad, *m1, *m2, *mask;
  seqs_t q;
  work_t *w;
  size_t *order, *off;
  int32_t *inp, *tgt, *gin, *qg; /* one batch's rows */
  int32_t *hit, *hctx;        /* --tie-shuffle: reordered items, contexts */
  int32_t *crow;              /* one batch's context rows */
  const int32_t *items, *ctxr;
  float *eid, *attr;          /* id vectors; token vectors (in me->w) */
  unsigned char *cold, *idrop;
  uint64_t rng;
  long step;
  hr_nn_adam_t adam;
} mrun_t;

static void mrun_free(mrun_t *r) {
  free(r->grad);
  free(r->m1);
  free(r->m2);
  free(r->mask);
  free(r->q.start);
  free(r->q.len);
  free(r->q.first);
  hr_seq_work_free(r->w);
  free(r->inp);
  free(r->tgt);
  free(r->gin);
  free(r->qg);
  free(r->order);
  free(r->hit);
  free(r->crow);
  free(r->hctx);
  free(r->off);
  free(r->eid);
  free(r->cold);
  free(r->idrop);
}

/* The item tower's part: token vectors, the cold items (attributes and no
 * interaction at all) and the id dropout flags. 0 or HR_ENOMEM. */
static int mrun_tower(mrun_t *r, uint64_t seed) {
  const hr_item_tokens_t *tk = r->tk;
  uint64_t s2 = seed * 31 + 5;
  r->attr = r->me->w + r->np;
  for (size_t i = 0; i < r->na; i++)
    r->attr[i] = r->o->init_std * (float)hr__gauss(&s2);
  r->eid = malloc(sizeof(float) * r->ni * (size_t)r->dm.d);
  r->cold = calloc(r->ni, 1);
  if (r->eid == NULL || r->cold == NULL)
    return HR_ENOMEM;
  if (r->o->id_dropout > 0 && (r->idrop = calloc(r->ni, 1)) == NULL)
    return HR_ENOMEM;
  for (size_t i = 0; i < r->ni; i++)
    r->cold[i] = tk->ptr[i + 1] > tk->ptr[i];
  for (uint64_t k = 0; k < r->h->ptr[r->h->n_users]; k++)
    r->cold[r->h->items[k]] = 0;
  for (size_t i = 0; i < r->ni; i++)
    r->n_cold += r->cold[i];
  return 0;
}

/* The batch buffers, the softmax's work, --tie-shuffle's copies. */
static int mrun_buffers(mrun_t *r) {
  const hr_seq_opts_t *o = r->o;
  const hr_csr_t *h = r->h;
  int neg;
  r->maxR = (size_t)o->batch * (size_t)r->dm.L;
  r->w = hr_seq_work_new(&r->dm, o->batch);
  neg = o->negatives >= 0 ? o->negatives
                          : (r->dm.n_items > HR_SEQ_FULL_SOFTMAX_MAX ? 2048 : 0);
  if (neg >= r->dm.n_items)
    neg = 0; /* as many draws as items: the full softmax is exact */
  if (r->w != NULL && hr_seq_work_negatives(r->w, &r->dm, neg, r->rng) != 0)
    return HR_ENOMEM; /* the loss's buffers: R x (neg + 1) or R x n_items */
  if (r->w != NULL && r->n_cold > 0 &&
      hr_seq_work_exclude(r->w, r->cold, r->ni) != 0)
    return HR_ENOMEM;
  r->mask = malloc(sizeof(float) * hr_seq_mask_floats(&r->dm, r->maxR));
  r->inp = malloc(sizeof(int32_t) * r->maxR);
  r->tgt = malloc(sizeof(int32_t) * r->maxR);
  r->gin = malloc(sizeof(int32_t) * r->maxR);
  r->qg = malloc(sizeof(int32_t) * r->maxR);
  r->order = malloc(sizeof(size_t) * (r->q.n + 1));
  r->off = malloc(sizeof(size_t) * ((size_t)o->batch + 1));
  if (!r->w || !r->mask || !r->inp || !r->tgt || !r->gin || !r->qg ||
      !r->order || !r->off)
    return HR_ENOMEM;
  if (o->tie_shuffle && h->ts != NULL) {
    size_t nh = (size_t)h->ptr[h->n_users];
    size_t S = r->crow ? (size_t)o->ctx_slots : 0;
    r->hit = malloc(sizeof(int32_t) * (nh + 1));
    if (r->hit == NULL ||
        (S > 0 && (r->hctx = malloc(sizeof(int32_t) * (nh * S + 1))) == NULL))
      return HR_ENOMEM;
    memcpy(r->hit, h->items, sizeof(int32_t) * nh);
    if (r->hctx != NULL) /* the context rows move with their items */
      memcpy(r->hctx, o->ctx_rows, sizeof(int32_t) * nh * S);
  }
  r->items = r->hit ? r->hit : h->items;
  r->ctxr = r->hctx ? r->hctx : o->ctx_rows;
  for (size_t i = 0; i < r->q.n; i++)
    r->order[i] = i;
  return 0;
}

/* Member k's parameters (initialised) and state. 0 or HR_ENOMEM. */
static int mrun_init(mrun_t *r, members_t *c, int k) {
  const hr_seq_opts_t *o = c->o;
  uint64_t seed = o->seed + (uint64_t)k;

  memset(r, 0, sizeof(*r));
  r->c = c;
  r->h = c->h;
  r->o = o;
  r->dm = c->all->dims; /* checked by hr_seq_fit */
  r->me = &c->all->m[k];
  r->tk = o->tokens && o->tokens->n_tokens > 0 ? o->tokens : NULL;
  r->ni = r->h->n_items;
  r->rng = seed * 0x2545F4914F6CDD1Dull + 7;
  r->adam = (hr_nn_adam_t){o->lr, 0.9f, 0.98f, 1e-8f, o->weight_decay};
  r->np = hr_seq_param_count(&r->dm);
  /* With an item tower the optimiser's vector is [network | token
   * vectors]; the network's item table holds the id vectors, and the
   * composed vectors replace them around each batch. */
  r->na = r->tk ? r->tk->n_tokens * (size_t)r->dm.d : 0;
  /* ... | context values' vectors] */
  r->nc = o->ctx_slots > 0 && o->ctx_rows != NULL
              ? o->ctx_values * (size_t)r->dm.d
              : 0;
  r->nt = r->np + r->na + r->nc;
  r->me->w = calloc(r->nt, sizeof(float));
  r->grad = calloc(r->nt, sizeof(float));
  r->m1 = calloc(r->nt, sizeof(float));
  r->m2 = calloc(r->nt, sizeof(float));
  if (!r->me->w || !r->grad || !r->m1 || !r->m2 ||
      make_seqs(r->h, r->dm.L, &r->q) != 0)
    return HR_ENOMEM;
  hr_seq_bind(&r->dm, r->me->w, &r->me->p);
  init_params(&r->dm, &r->me->p, o->init_std, seed);
  if (r->nc > 0) { /* context vectors start at 0: the neutral context */
    r->me->ctx = r->me->w + r->np + r->na;
    if ((r->crow = malloc(sizeof(int32_t) * (size_t)o->batch *
                          (size_t)r->dm.L * (size_t)o->ctx_slots)) == NULL)
      return HR_ENOMEM;
  }
  if (r->tk != NULL && mrun_tower(r, seed) != 0)
    return HR_ENOMEM;
  return mrun_buffers(r);
}

/* An epoch's order of the sequences; with --tie-shuffle, the items that
 * share a known time are reordered too (with their contexts). */
static void mrun_shuffle(mrun_t *r) {
  const hr_csr_t *h = r->h;
  size_t S = (size_t)(r->o->ctx_slots > 0 ? r->o->ctx_slots : 0);
  for (size_t i = r->q.n; i > 1; i--) {
    size_t j = (size_t)(hr__sm64(&r->rng) % i), t = r->order[i - 1];
    r->order[i - 1] = r->order[j];
    r->order[j] = t;
  }
  if (r->hit == NULL)
    return;
  for (size_t u = 0; u < h->n_users; u++)
    for (uint64_t a = h->ptr[u], e; a < h->ptr[u + 1]; a = e) {
      for (e = a + 1;
           e < h->ptr[u + 1] && h->ts[e] == h->ts[a] && h->ts[a] > 0; e++)
        ;
      for (uint64_t i = e - a; i > 1; i--) {
        uint64_t j = hr__sm64(&r->rng) % i;
        int32_t t = r->hit[a + i - 1];
        r->hit[a + i - 1] = r->hit[a + j];
        r->hit[a + j] = t;
        for (size_t k = 0; r->hctx != NULL && k < S; k++) {
          size_t x = (a + i - 1) * S + k, y = (a + j) * S + k;
          int32_t cv = r->hctx[x];
          r->hctx[x] = r->hctx[y];
          r->hctx[y] = cv;
        }
      }
    }
}

/* The rows of the ns sequences from order[b0]: inputs, targets, their
 * gap buckets and the targets' contexts. Returns the row count. */
static size_t mrun_fill(mrun_t *r, size_t b0, size_t ns) {
  const hr_csr_t *h = r->h;
  const seqs_t *q = &r->q;
  int S = r->o->ctx_slots;
  r->off[0] = 0;
  for (size_t s = 0; s < ns; s++) {
    size_t sq = r->order[b0 + s];
    for (int t = 0; t < q->len[sq]; t++) {
      size_t at = q->start[sq] + (size_t)t, row = r->off[s] + (size_t)t;
      r->inp[row] = r->items[at];
      r->tgt[row] = r->items[at + 1];
      /* the row before the window's first is the user's previous item
       * when there is one (q->first[sq] is the user's first); as
       * hr_seq_embed, a time is known when positive */
      r->gin[row] = r->dm.n_gap && at > q->first[sq] && h->ts[at] > 0 &&
                            h->ts[at - 1] > 0
                        ? hr_seq_gap_bucket(h->ts[at] - h->ts[at - 1], 1)
                        : 0;
      r->qg[row] = r->dm.n_gap && h->ts[at + 1] > 0 && h->ts[at] > 0
                       ? hr_seq_gap_bucket(h->ts[at + 1] - h->ts[at], 1)
                       : 0;
      /* the context the target was chosen in */
      for (int k = 0; r->crow != NULL && k < S; k++)
        r->crow[row * (size_t)S + (size_t)k] =
            r->ctxr[(at + 1) * (size_t)S + (size_t)k];
    }
    r->off[s + 1] = r->off[s] + (size_t)q->len[sq];
  }
  return r->off[ns];
}

/* One optimiser step on the filled batch (ns sequences, R rows): dropout
 * masks, the loss and its gradient (through the item tower and the
 * context vectors), clipping, AdamW. Returns the batch's summed loss. */
static double mrun_step(mrun_t *r, size_t ns, size_t R) {
  const hr_seq_opts_t *o = r->o;
  size_t d = (size_t)r->dm.d, ni = r->ni;
  hr_seq_member_t *me = r->me;
  double loss;
  /* dropout on the embeddings and on each block's attention and
   * feed-forward outputs: each value scaled by 0 or 1/(1-p) */
  for (size_t i = 0; i < hr_seq_mask_floats(&r->dm, R); i++) {
    float p = i < R * d ? o->dropout : o->block_dropout;
    r->mask[i] = p > 0 ? (hr__unif(&r->rng) < 1.0 - p ? 1.0f / (1.0f - p)
                                                       : 0.0f)
                       : 1.0f;
  }
  memset(r->grad, 0, sizeof(float) * r->nt);
  hr_seq_work_seed(r->w, hr__sm64(&r->rng));
  hr_seq_work_context(r->w, me->ctx, r->grad + r->np + r->na, r->crow,
                      r->crow ? o->ctx_slots : 0);
  if (r->tk != NULL) { /* items = id vectors + token vectors */
    /* id dropout: some items show their attribute vector alone this
     * batch, so that it must carry the item by itself (cold items) */
    for (size_t i = 0; i < ni && r->idrop; i++)
      r->idrop[i] = r->tk->ptr[i + 1] > r->tk->ptr[i] &&
                    hr__unif(&r->rng) < o->id_dropout;
    memcpy(r->eid, me->w, sizeof(float) * ni * d);
    compose_items(r->tk, d, r->eid, r->attr, r->idrop, me->w);
  }
  loss = hr_seq_batch_grad(&r->dm, me->w, r->inp, r->tgt, r->gin, r->qg,
                           r->off, ns, r->mask, r->grad, r->w) *
         (double)R;
  if (r->tk != NULL) { /* back to the id vectors; the tokens' gradient */
    memcpy(me->w, r->eid, sizeof(float) * ni * d);
    compose_items_bwd(r->tk, d, r->grad, r->grad + r->np);
    for (size_t i = 0; i < ni && r->idrop; i++)
      if (r->idrop[i])
        memset(r->grad + i * d, 0, sizeof(float) * d);
  }
  if (o->clip > 0) {
    double nrm = sqrt(hr_nn_sqnorm(r->grad, r->nt));
    if (nrm > o->clip) {
      float sc = (float)(o->clip / nrm);
      for (size_t i = 0; i < r->nt; i++)
        r->grad[i] *= sc;
    }
  }
  hr_nn_adam_step(&r->adam, ++r->step, me->w, r->grad, r->m1, r->m2, r->nt);
  return loss;
}

/* Member k of c->all, trained with seed o->seed + k; the time of its
 * epochs' metrics goes to *spent. 0, MEMBER_STOPPED (another member
 * failed; err untouched) or an error. */
static int fit_member(members_t *c, int k, double *spent, hr_error_t *err) {
  const hr_seq_opts_t *o = c->o;
  mrun_t r;
  int rc = mrun_init(&r, c, k), cap = o->epochs;
  size_t d = (size_t)r.dm.d;

  if (rc != 0)
    goto oom;
  if (!c->parallel)
    openblas_set_num_threads(c->threads);
  if (c->parallel)
    pthread_mutex_lock(&c->mu);
  cap = c->cap; /* a member that starts late: the cap so far */
  if (c->parallel)
    pthread_mutex_unlock(&c->mu);
  for (int ep = 0; ep < cap; ep++) {
    double loss = 0;
    size_t rows = 0;
    mrun_shuffle(&r);
    for (size_t b0 = 0; b0 < r.q.n; b0 += (size_t)o->batch) {
      size_t ns = r.q.n - b0 < (size_t)o->batch ? r.q.n - b0
                                                : (size_t)o->batch;
      size_t R = mrun_fill(&r, b0, ns);
      loss += mrun_step(&r, ns, R);
      rows += R;
      if (!c->parallel) /* the bar: in order only */
        hr_progress_batch(&c->pg, c->epochs_done,
                          (double)(b0 + ns) / (double)r.q.n);
    }
    r.me->loss = rows ? loss / (double)rows : 0;
    /* validated on the item vectors the model would ship */
    if (r.tk != NULL && o->validate != NULL) {
      memcpy(r.eid, r.me->w, sizeof(float) * r.ni * d);
      compose_items(r.tk, d, r.eid, r.attr, r.cold, r.me->w);
    }
    if ((rc = member_epoch(c, k, r.me->loss, spent, &cap)) == HR_ENOMEM)
      goto oom;
    if (rc == HR_ETIMEOUT) {
      hr_error_set(err, rc, NULL, "over budget: the epochs so far project "
                   "even half of the %d epochs past the deadline", o->epochs);
      goto done;
    }
    if (rc != 0)
      goto done;
    if (r.tk != NULL && o->validate != NULL)
      memcpy(r.me->w, r.eid, sizeof(float) * r.ni * d);
  }
  if (r.tk != NULL) { /* bake the item tower into the item table */
    memcpy(r.eid, r.me->w, sizeof(float) * r.ni * d);
    compose_items(r.tk, d, r.eid, r.attr, r.cold, r.me->w);
  }
  goto done;
oom:
  rc = hr_error_set(err, HR_ENOMEM, NULL, "out of memory");
done:
  mrun_free(&r);
  return rc;
}

typedef struct {
  members_t *c;
  int first, step;         /* members first, first + step, ... */
  int rc;
  hr_error_t err;
  double seconds, spent;   /* its time, and the part in metrics */
} worker_t;

static void *train_members(void *arg) {
  worker_t *wk = arg;
  members_t *c = wk->c;
  int n = c->all->members;
  double t0 = hr__now_s();
  for (int k = wk->first; k < n && wk->rc == 0; k += wk->step)
    wk->rc = fit_member(c, k, &wk->spent, &wk->err);
  if (wk->rc < 0 && c->parallel) { /* the others stop after an epoch */
    pthread_mutex_lock(&c->mu);
    c->failed = 1;
    pthread_mutex_unlock(&c->mu);
  }
  wk->seconds = hr__now_s() - t0;
  return NULL;
}

int hr_seq_fit(const hr_csr_t *h, const hr_seq_opts_t *o, hr_seq_fit_t *out,
               hr_error_t *err) {
  members_t c = {0};
  worker_t wk[HR_SEQ_MAX_MEMBERS];
  pthread_t th[HR_SEQ_MAX_MEMBERS];
  int started[HR_SEQ_MAX_MEMBERS] = {0};
  int rc = 0, n = o->members > 0 ? o->members : 1;
  int T = o->threads > 0 ? o->threads : 1, nw = 1;

  const hr_seq_dims_t *dm = &o->dims;
  memset(out, 0, sizeof(*out));
  if (n > HR_SEQ_MAX_MEMBERS)
    return hr_error_set(err, HR_EINVAL, NULL, "seq: at most %d members",
                        HR_SEQ_MAX_MEMBERS);
  if (dm->d < 1 || dm->d > 1024 || dm->L < 1 || dm->L > HR_SEQ_MAX_LEN ||
      dm->blocks < 0 || dm->blocks > HR_SEQ_MAX_BLOCKS || dm->ffn < 1 ||
      o->batch < 1 || o->epochs < 0 || o->epochs > INT_MAX / n ||
      h->n_items < 1 || dm->n_gap < 0 || dm->n_gap > HR_SEQ_GAPS)
    return hr_error_set(err, HR_EINVAL, NULL, "seq: bad dimensions");
  if (hr_seq_enc_check(dm) != NULL)
    return hr_error_set(err, HR_EINVAL, NULL, "seq: %s",
                        hr_seq_enc_check(dm));
  if (o->tokens != NULL && o->tokens->n_tokens > 0 &&
      o->tokens->n_items != h->n_items)
    return hr_error_set(err, HR_EINVAL, NULL, "seq: item tokens for %zu "
                        "items, data has %zu", o->tokens->n_items,
                        h->n_items);
  /* every member's network */
  out->dims = *dm;
  out->dims.n_items = (int)h->n_items;
  if (h->ts == NULL)
    out->dims.n_gap = 0;
  out->members = n;
  out->n_ctx = o->ctx_slots > 0 && o->ctx_rows != NULL ? o->ctx_values : 0;
  c.h = h;
  c.o = o;
  c.t0 = hr__now_s();
  c.cap = o->epochs;
  c.all = out;
  /* Several members on several threads: each its own network on one
   * OpenBLAS thread (no waiting on BLAS's workers, which idle through
   * the softmax and the layer norms); otherwise one after the other on
   * all of them. A member's result depends on its seed and on its
   * OpenBLAS thread count. */
  c.parallel = n > 1 && T > 1;
  c.threads = c.parallel ? 1 : T;
  if ((rc = hr_progress_begin(&c.pg, "seq", n * o->epochs, o->progress,
                              o->report, err)) != 0)
    return rc;
  if (c.parallel)
    nw = T < n ? T : n;
  for (int t = 0; t < nw; t++)
    wk[t] = (worker_t){&c, t, nw, 0, {0}, 0, 0};
  c.workers = nw;
  if (c.parallel) {
    openblas_set_num_threads(1);
    pthread_mutex_init(&c.mu, NULL);
    /* a worker whose thread does not start runs here, after the others
     * started: every member uses one BLAS thread either way */
    for (int t = 0; t < nw; t++)
      started[t] = pthread_create(&th[t], NULL, train_members, &wk[t]) == 0;
    for (int t = 0; t < nw; t++)
      if (!started[t])
        train_members(&wk[t]);
    for (int t = 0; t < nw; t++)
      if (started[t])
        pthread_join(th[t], NULL);
    pthread_mutex_destroy(&c.mu);
    openblas_set_num_threads(T); /* as an in-order fit leaves it */
  } else
    train_members(&wk[0]);
  /* the first failure (a worker stopped by another's has rc
   * MEMBER_STOPPED and no message) */
  for (int t = 0; t < nw && rc == 0; t++)
    if (wk[t].rc < 0) {
      rc = wk[t].rc;
      if (err != NULL)
        *err = wk[t].err;
    }
  for (int k = 0; k < n; k++)
    out->loss += out->m[k].loss / n;
  out->members = n;
  out->epochs = c.cap;
  if (rc == 0 && (rc = assemble(out, n)) != 0)
    hr_error_set(err, rc, NULL, "out of memory");
  /* training alone: the longest worker's time outside the metrics */
  for (int t = 0; t < nw; t++)
    if (wk[t].seconds - wk[t].spent > out->seconds)
      out->seconds = wk[t].seconds - wk[t].spent;
  if (rc == 0)
    rc = hr_progress_end(&c.pg, err);
  else if (c.pg.csv != NULL)
    hr_progress_end(&c.pg, NULL);
  if (rc != 0)
    hr_seq_fit_free(out);
  return rc;
}

int hr_seq_long_term_fit(const hr_csr_t *h, const hr_seq_opts_t *o,
                         hr_ials_t *lt, hr_error_t *err) {
  hr_ials_opts_t io = o->lt_opts;
  io.index = 0;
  io.progress = 0;
  io.ctx_prior = NULL;
  return hr_ials_fit(h, &io, lt, err);
}

void hr_seq_fit_free(hr_seq_fit_t *f) {
  for (int k = 0; k < HR_SEQ_MAX_MEMBERS; k++)
    free(f->m[k].w);
  free(f->items_cat);
  free(f->ctx_cat);
  memset(f, 0, sizeof(*f));
}

void hr_seq_user_vector(const hr_seq_fit_t *f, const int32_t *hist,
                        const int64_t *ts, size_t n, int64_t now, float *buf,
                        float *u) {
  for (int k = 0; k < f->members; k++)
    hr_seq_embed(&f->dims, &f->m[k].p, hist, ts, n, now, buf,
                 u + (size_t)k * (size_t)f->dims.d);
}
