/* seq.c -- the forward pass of the sequential two-tower network (seq.h).
 * Pre-norm transformer blocks: h = x + Wo attn(LN1 x) + bo,
 * x' = h + W2 relu(W1 LN2 h + b1) + b2; the user vector is LNf of the last
 * block's output at the newest row. One attention head of width d. The
 * GRU and CNN encoders (seq_enc.c) take the blocks' place. */
#include "hr/seq.h"

#include "hr/nn.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* Position vectors: the transformer's alone (order is in the others). */
static size_t pos_rows(const hr_seq_dims_t *dm) {
  return dm->enc == HR_SEQ_TRANSFORMER ? (size_t)dm->L : 0;
}

size_t hr_seq_param_count(const hr_seq_dims_t *dm) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn;
  size_t blk = 2 * d + 4 * d * d + d + 2 * d + d * f + f + f * d + d;
  return (size_t)dm->n_items * d + pos_rows(dm) * d +
         2 * (size_t)dm->n_gap * d + (size_t)dm->blocks * blk +
         hr_seq_enc_param_count(dm) + 2 * d;
}

/* Everything after the item table, from w on, in the flat order. */
static void bind_rest(const hr_seq_dims_t *dm, float *w, hr_seq_params_t *p) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn;
#define TAKE(dst, n) (dst = w, w += (n))
  TAKE(p->pos, pos_rows(dm) * d);
  TAKE(p->gin, (size_t)dm->n_gap * d);
  TAKE(p->gq, (size_t)dm->n_gap * d);
  for (int b = 0; b < dm->blocks; b++) {
    hr_seq_block_t *k = &p->blk[b];
    TAKE(k->ln1g, d);
    TAKE(k->ln1b, d);
    TAKE(k->wq, d * d);
    TAKE(k->wk, d * d);
    TAKE(k->wv, d * d);
    TAKE(k->wo, d * d);
    TAKE(k->bo, d);
    TAKE(k->ln2g, d);
    TAKE(k->ln2b, d);
    TAKE(k->w1, d * f);
    TAKE(k->b1, f);
    TAKE(k->w2, f * d);
    TAKE(k->b2, d);
  }
  p->gw = p->gu = p->gb = p->cf = p->cb = p->cv = p->cw = p->cwb = NULL;
  if (dm->enc == HR_SEQ_GRU) {
    TAKE(p->gw, d * 3 * d);
    TAKE(p->gu, d * 3 * d);
    TAKE(p->gb, 3 * d);
  } else if (dm->enc == HR_SEQ_CNN) {
    size_t W = (size_t)dm->win, nh = (size_t)dm->nh, nv = (size_t)dm->nv;
    TAKE(p->cf, d * nh * W * (W + 1) / 2);
    TAKE(p->cb, W * nh);
    TAKE(p->cv, nv * W);
    TAKE(p->cw, (nv * d + W * nh) * d);
    TAKE(p->cwb, d);
  }
  TAKE(p->lnfg, d);
  TAKE(p->lnfb, d);
#undef TAKE
}

void hr_seq_bind(const hr_seq_dims_t *dm, float *flat, hr_seq_params_t *p) {
  p->item = flat;
  p->item_ld = 0;
  bind_rest(dm, flat + (size_t)dm->n_items * (size_t)dm->d, p);
}

void hr_seq_bind_split(const hr_seq_dims_t *dm, float *item, size_t item_ld,
                       float *rest, hr_seq_params_t *p) {
  p->item = item;
  p->item_ld = item_ld;
  bind_rest(dm, rest, p);
}

/* Floats per row of a GRU's or a CNN's activations. */
static size_t enc_row_floats(const hr_seq_dims_t *dm) {
  size_t d = (size_t)dm->d, NH = (size_t)dm->win * (size_t)dm->nh;
  if (dm->enc == HR_SEQ_GRU)
    return 10 * d;                      /* gz, gh, gs */
  if (dm->enc == HR_SEQ_CNN)
    return 2 * NH + (size_t)dm->nv * d + NH; /* cc, ca, cz */
  return 0;
}

size_t hr_seq_acts_floats(const hr_seq_dims_t *dm, size_t R, const int *len,
                          size_t ns) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, sq = 0;
  for (size_t s = 0; s < ns; s++)
    sq += (size_t)len[s] * (size_t)len[s];
  /* x0, xl, y + per block 9 R x d, R x f, 4 R (LN stats) + 2 R (final)
   * + the encoder's */
  return R * d * 3 + (size_t)dm->blocks * (R * d * 9 + R * f + 4 * R + sq) +
         2 * R + R * enc_row_floats(dm);
}

void hr_seq_acts_bind(const hr_seq_dims_t *dm, size_t R, const int *len,
                      size_t ns, float *buf, hr_seq_acts_t *a) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, sq = 0;
  float *w = buf;
  for (size_t s = 0; s < ns; s++)
    sq += (size_t)len[s] * (size_t)len[s];
#define TAKE(dst, n) (dst = w, w += (n))
  TAKE(a->x0, R * d);
  for (int b = 0; b < dm->blocks; b++) {
    TAKE(a->b[b].x, R * d);
    TAKE(a->b[b].a, R * d);
    TAKE(a->b[b].mu1, R);
    TAKE(a->b[b].rs1, R);
    TAKE(a->b[b].q, R * d);
    TAKE(a->b[b].k, R * d);
    TAKE(a->b[b].v, R * d);
    TAKE(a->b[b].o, R * d);
    TAKE(a->b[b].h, R * d);
    TAKE(a->b[b].c, R * d);
    TAKE(a->b[b].mu2, R);
    TAKE(a->b[b].rs2, R);
    TAKE(a->b[b].f1, R * f);
  }
  TAKE(a->p, (size_t)dm->blocks * sq);
  TAKE(a->xl, R * d);
  TAKE(a->y, R * d);
  TAKE(a->muf, R);
  TAKE(a->rsf, R);
  a->gz = a->gh = a->gs = a->cc = a->ca = a->cz = NULL;
  if (dm->enc == HR_SEQ_GRU) {
    TAKE(a->gz, R * 3 * d);
    TAKE(a->gh, R * 3 * d);
    TAKE(a->gs, R * 4 * d);
  } else if (dm->enc == HR_SEQ_CNN) {
    size_t NH = (size_t)dm->win * (size_t)dm->nh;
    TAKE(a->cc, R * NH);
    TAKE(a->ca, R * NH);
    TAKE(a->cz, R * ((size_t)dm->nv * d + NH));
  }
#undef TAKE
}

void hr_seq_forward(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                    const int32_t *items, const int32_t *gaps,
                    const size_t *off, size_t ns, const float *mask,
                    hr_seq_acts_t *a) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, R = off[ns];
  float scale = 1.0f / sqrtf((float)d);
  float *pb = a->p;

  for (size_t s = 0; s < ns; s++)
    for (size_t r = off[s]; r < off[s + 1]; r++) {
      const float *e = p->item + (size_t)items[r] * (p->item_ld ? p->item_ld : d),
                  *q = pos_rows(dm) ? p->pos + (r - off[s]) * d : NULL;
      const float *gi = dm->n_gap > 0
                            ? p->gin + (size_t)(gaps ? gaps[r] : 0) * d
                            : NULL;
      for (size_t c = 0; c < d; c++)
        a->x0[r * d + c] = (e[c] + (q ? q[c] : 0.0f) + (gi ? gi[c] : 0.0f)) *
                           (mask ? mask[r * d + c] : 1.0f);
    }
  const float *x = a->x0;
  for (int b = 0; b < dm->blocks; b++) {
    const hr_seq_block_t *k = &p->blk[b];
    hr_seq_block_acts_t *ab = &a->b[b];
    if (x != ab->x)
      memcpy(ab->x, x, sizeof(float) * R * d);
    hr_nn_layernorm_fwd(ab->x, R, (int)d, k->ln1g, k->ln1b, ab->a, ab->mu1,
                        ab->rs1);
    hr_nn_linear_fwd(ab->a, R, (int)d, (int)d, k->wq, NULL, ab->q);
    hr_nn_linear_fwd(ab->a, R, (int)d, (int)d, k->wk, NULL, ab->k);
    hr_nn_linear_fwd(ab->a, R, (int)d, (int)d, k->wv, NULL, ab->v);
    for (size_t s = 0; s < ns; s++) {
      int len = (int)(off[s + 1] - off[s]);
      hr_nn_attn_fwd(ab->q + off[s] * d, ab->k + off[s] * d,
                     ab->v + off[s] * d, len, (int)d, (int)d, 0, scale, pb,
                     ab->o + off[s] * d);
      pb += (size_t)len * (size_t)len;
    }
    hr_nn_linear_fwd(ab->o, R, (int)d, (int)d, k->wo, k->bo, ab->h);
    if (mask != NULL) {
      const float *ma = mask + (size_t)(1 + 2 * b) * R * d;
      for (size_t i = 0; i < R * d; i++)
        ab->h[i] = ab->h[i] * ma[i] + ab->x[i];
    } else {
      for (size_t i = 0; i < R * d; i++)
        ab->h[i] += ab->x[i];
    }
    hr_nn_layernorm_fwd(ab->h, R, (int)d, k->ln2g, k->ln2b, ab->c, ab->mu2,
                        ab->rs2);
    hr_nn_linear_fwd(ab->c, R, (int)d, (int)f, k->w1, k->b1, ab->f1);
    hr_nn_relu_fwd(ab->f1, R * f, ab->f1);
    float *out = b + 1 < dm->blocks ? a->b[b + 1].x : a->xl;
    hr_nn_linear_fwd(ab->f1, R, (int)f, (int)d, k->w2, k->b2, out);
    if (mask != NULL) {
      const float *mf = mask + (size_t)(2 + 2 * b) * R * d;
      for (size_t i = 0; i < R * d; i++)
        out[i] = out[i] * mf[i] + ab->h[i];
    } else {
      for (size_t i = 0; i < R * d; i++)
        out[i] += ab->h[i];
    }
    x = out;
  }
  if (dm->enc != HR_SEQ_TRANSFORMER)
    hr_seq_enc_fwd(dm, p, off, ns, a);
  else if (dm->blocks == 0)
    memcpy(a->xl, a->x0, sizeof(float) * R * d);
  hr_nn_layernorm_fwd(a->xl, R, (int)d, p->lnfg, p->lnfb, a->y, a->muf,
                      a->rsf);
}

/* hr_seq_forward over one sequence of R rows when only the newest row's
 * output is wanted (a user vector): every block but the last runs on all
 * rows, the last one computes keys and values for all rows and the rest
 * (query, attention, feed-forward, final norm) for the newest row alone.
 * Returns that row's y. */
static const float *forward_newest(const hr_seq_dims_t *dm,
                                   const hr_seq_params_t *p,
                                   const int32_t *items, const int32_t *gaps,
                                   size_t R, hr_seq_acts_t *a) {
  size_t d = (size_t)dm->d, f = (size_t)dm->ffn, last = R - 1;
  size_t off[2] = {0, R};
  float scale = 1.0f / sqrtf((float)d);
  hr_seq_dims_t head = *dm;

  if (dm->blocks == 0) { /* and every GRU and CNN */
    hr_seq_forward(dm, p, items, gaps, off, 1, NULL, a);
    return a->y + last * d;
  }
  /* blocks 0 .. B-2 as usual (none: the embeddings); their output, in
   * xl, is the last block's input */
  const hr_seq_block_t *k = &p->blk[dm->blocks - 1];
  hr_seq_block_acts_t *ab = &a->b[dm->blocks - 1];
  head.blocks = dm->blocks - 1;
  hr_seq_forward(&head, p, items, gaps, off, 1, NULL, a);
  memcpy(ab->x, a->xl, sizeof(float) * R * d);
  float *pr = a->p; /* one row of attention weights */
  hr_nn_layernorm_fwd(ab->x, R, (int)d, k->ln1g, k->ln1b, ab->a, ab->mu1,
                      ab->rs1);
  hr_nn_linear_fwd(ab->a, R, (int)d, (int)d, k->wk, NULL, ab->k);
  hr_nn_linear_fwd(ab->a, R, (int)d, (int)d, k->wv, NULL, ab->v);
  hr_nn_linear_fwd(ab->a + last * d, 1, (int)d, (int)d, k->wq, NULL, ab->q);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)R, (int)d, scale, ab->k,
              (int)d, ab->q, 1, 0.0f, pr, 1);
  {
    float mx = -INFINITY;
    double sum = 0;
    for (size_t j = 0; j < R; j++)
      mx = pr[j] > mx ? pr[j] : mx;
    for (size_t j = 0; j < R; j++) {
      pr[j] = expf(pr[j] - mx);
      sum += pr[j];
    }
    for (size_t j = 0; j < R; j++)
      pr[j] = (float)(pr[j] / sum);
  }
  cblas_sgemv(CblasRowMajor, CblasTrans, (int)R, (int)d, 1.0f, ab->v, (int)d,
              pr, 1, 0.0f, ab->o, 1);
  hr_nn_linear_fwd(ab->o, 1, (int)d, (int)d, k->wo, k->bo, ab->h);
  for (size_t c = 0; c < d; c++)
    ab->h[c] += ab->x[last * d + c];
  hr_nn_layernorm_fwd(ab->h, 1, (int)d, k->ln2g, k->ln2b, ab->c, ab->mu2,
                      ab->rs2);
  hr_nn_linear_fwd(ab->c, 1, (int)d, (int)f, k->w1, k->b1, ab->f1);
  hr_nn_relu_fwd(ab->f1, f, ab->f1);
  hr_nn_linear_fwd(ab->f1, 1, (int)f, (int)d, k->w2, k->b2, a->xl);
  for (size_t c = 0; c < d; c++)
    a->xl[c] += ab->h[c];
  hr_nn_layernorm_fwd(a->xl, 1, (int)d, p->lnfg, p->lnfb, a->y, a->muf,
                      a->rsf);
  return a->y;
}

void hr_seq_user_out(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                     const float *y, int qgap, float *u) {
  size_t d = (size_t)dm->d;
  const float *g = dm->n_gap > 0 && qgap >= 0 && qgap < dm->n_gap
                       ? p->gq + (size_t)qgap * d
                       : NULL;
  for (size_t c = 0; c < d; c++)
    u[c] = y[c] + (g ? g[c] : 0.0f);
}

int hr_seq_gap_bucket(int64_t seconds, int known) {
  int b = 1;
  uint64_t m;
  if (!known)
    return 0;
  m = seconds > 0 ? (uint64_t)seconds / 60 + 1 : 1;
  while (m > 1 && b < HR_SEQ_GAPS - 1) {
    m >>= 1;
    b++;
  }
  return b;
}

size_t hr_seq_mask_floats(const hr_seq_dims_t *dm, size_t R) {
  return (size_t)(1 + 2 * dm->blocks) * R * (size_t)dm->d;
}

size_t hr_seq_embed_floats(const hr_seq_dims_t *dm) {
  int L = dm->L;
  return hr_seq_acts_floats(dm, (size_t)L, &L, 1);
}

void hr_seq_embed_state(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                        const int32_t *items, const int64_t *ts, size_t n,
                        float *buf, float *y) {
  /* a CNN's newest state reads its window alone */
  size_t L = dm->enc == HR_SEQ_CNN ? (size_t)dm->win : (size_t)dm->L;
  size_t m = n < L ? n : L;
  size_t d = (size_t)dm->d, first = n - m;
  int len = (int)m;
  int32_t gaps[HR_SEQ_MAX_LEN];
  hr_seq_acts_t a;
  if (m == 0) {
    memset(y, 0, sizeof(float) * d);
    return;
  }
  for (size_t t = 0; t < m; t++) {
    size_t at = first + t;
    /* a time is known when positive; both known: no overflow */
    gaps[t] = ts && at > 0 && ts[at] > 0 && ts[at - 1] > 0
                  ? hr_seq_gap_bucket(ts[at] - ts[at - 1], 1)
                  : 0;
  }
  hr_seq_acts_bind(dm, m, &len, 1, buf, &a);
  memcpy(y, forward_newest(dm, p, items + first, gaps, m, &a),
         sizeof(float) * d);
}

int hr_seq_request_gap(const int64_t *ts, size_t n, int64_t now) {
  return ts && n > 0 && now > 0 && ts[n - 1] > 0
             ? hr_seq_gap_bucket(now - ts[n - 1], 1)
             : 0;
}

void hr_seq_embed(const hr_seq_dims_t *dm, const hr_seq_params_t *p,
                  const int32_t *items, const int64_t *ts, size_t n,
                  int64_t now, float *buf, float *u) {
  hr_seq_embed_state(dm, p, items, ts, n, buf, u);
  if (n > 0)
    hr_seq_user_out(dm, p, u, hr_seq_request_gap(ts, n, now), u);
}

void hr_seq_add_context(float *u, const float *row, size_t d) {
  for (size_t c = 0; c < d; c++)
    u[c] += row[c];
}
