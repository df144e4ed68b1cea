/* progress.c -- the trainer's per-epoch report (train.h): a line per epoch
 * on stderr (a redrawn bar with the ETA while an epoch runs, when stderr is
 * a terminal) and, optionally, the curve as CSV. */
#include "hr/train.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int hr_progress_begin(hr_progress_t *p, const char *label, int epochs,
                      int print, const char *report, hr_error_t *err) {
  memset(p, 0, sizeof(*p));
  p->label = label;
  p->epochs = epochs;
  p->print = print;
  p->tty = print && isatty(STDERR_FILENO);
  p->t0 = hr__now_s();
  if (report != NULL && (p->csv = fopen(report, "w")) == NULL)
    return hr_error_set(err, HR_EIO, NULL, "--report %s: %s", report,
                        strerror(errno));
  return 0;
}

static void fmt_eta(double s, char *out, size_t n) {
  if (s >= 3600)
    snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
  else if (s >= 60)
    snprintf(out, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  else
    snprintf(out, n, "%ds", (int)(s + 0.5));
}

void hr_progress_batch(hr_progress_t *p, int epoch, double frac) {
  double now = hr__now_s(), done, el, eta;
  char e[32], bar[31];
  int w;

  if (!p->tty || now - p->last_draw < 0.2)
    return;
  p->last_draw = now;
  el = now - p->t0 - p->extra_s;
  done = epoch + frac;
  eta = done > 0 ? el / done * (p->epochs - done) : 0;
  fmt_eta(eta, e, sizeof(e));
  w = (int)(frac * 30);
  for (int i = 0; i < 30; i++)
    bar[i] = i < w ? '#' : '.';
  bar[30] = '\0';
  fprintf(stderr, "\r%s epoch %d/%d [%s] %3.0f%%  eta %s   ", p->label,
          epoch + 1, p->epochs, bar, frac * 100, e);
  fflush(stderr);
}

void hr_progress_epoch(hr_progress_t *p, int epoch, double loss,
                       const double *metric, int n_metric,
                       double metric_seconds) {
  static const char *const names[] = {"HR@10", "NDCG@10"};
  double el;
  char e[32];

  p->extra_s += metric_seconds;
  el = hr__now_s() - p->t0;
  fmt_eta((el - p->extra_s) / (epoch + 1) * (p->epochs - epoch - 1) +
              (n_metric > 0 ? metric_seconds * (p->epochs - epoch - 1) : 0),
          e, sizeof(e));
  if (p->print) {
    fprintf(stderr, "%s%s epoch %d/%d loss %.4f", p->tty ? "\r" : "",
            p->label, epoch + 1, p->epochs, loss);
    for (int i = 0; i < n_metric && i < 2; i++)
      fprintf(stderr, " %s %.4f", names[i], metric[i]);
    fprintf(stderr, "  %.1f s (eta %s)%s\n", el, e, p->tty ? "          " : "");
  }
  if (p->csv != NULL) {
    if (epoch == 0 || !p->header) {
      fputs("epoch,seconds,loss", p->csv);
      for (int i = 0; i < n_metric && i < 2; i++)
        fprintf(p->csv, ",%s", i == 0 ? "hr10" : "ndcg10");
      fputc('\n', p->csv);
      p->header = 1;
    }
    fprintf(p->csv, "%d,%.3f,%.6f", epoch + 1, el - p->extra_s, loss);
    for (int i = 0; i < n_metric && i < 2; i++)
      fprintf(p->csv, ",%.6f", metric[i]);
    fputc('\n', p->csv);
    fflush(p->csv);
  }
}

int hr_progress_end(hr_progress_t *p, hr_error_t *err) {
  int rc = 0;
  if (p->csv != NULL && (ferror(p->csv) | fclose(p->csv)) != 0)
    rc = hr_error_set(err, HR_EIO, NULL, "--report: write failed");
  p->csv = NULL;
  return rc;
}
