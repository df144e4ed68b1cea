/* ui.c -- the console (GET /ui/...): static files compiled into the
 * binary, served when ui.enabled is 1. No file is read at run time and
 * nothing is fetched from elsewhere: the pages call this server's own
 * endpoints, through the JavaScript client (clients/js/index.js, served
 * as /ui/client.js). */
#include "hr/err.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* The files, embedded by the assembler (paths relative to the top of the
 * tree, where make runs; the Makefile makes this object depend on them).
 * Each is followed by a NUL so that it is a C string. */
#define EMBED(sym, file)                                                     \
  __asm__(".section .rodata\n"                                               \
          ".balign 16\n"                                                     \
          ".global " #sym "\n" #sym ":\n"                                   \
          ".incbin \"" file "\"\n"                                           \
          ".byte 0\n"                                                        \
          ".previous\n");                                                    \
  extern const char sym[]

EMBED(hr__ui_index_html, "src/ui/index.html");
EMBED(hr__ui_console_js, "src/ui/console.js");
EMBED(hr__ui_console_css, "src/ui/console.css");
EMBED(hr__ui_client_js, "clients/js/index.js");

static const struct {
  const char *path, *type, *body;
} files[] = {
    {"/ui/", "text/html; charset=utf-8", hr__ui_index_html},
    {"/ui/index.html", "text/html; charset=utf-8", hr__ui_index_html},
    {"/ui/console.js", "text/javascript; charset=utf-8", hr__ui_console_js},
    {"/ui/console.css", "text/css; charset=utf-8", hr__ui_console_css},
    {"/ui/client.js", "text/javascript; charset=utf-8", hr__ui_client_js},
};

void hr__h_ui(const hr_hreq_t *req, hr_hresp_t *resp) {
  hr_error_t err = {0};
  const char *url = strcmp(req->url, "/ui") == 0 ? "/ui/" : req->url;

  if (!req->cfg->ui.enabled) {
    hr_error_set(&err, HR_ENOTFOUND, "", "no such path (the console is off: "
                 "set ui.enabled to 1)");
    hr__http_error(resp, &err);
    return;
  }
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if (strcmp(url, files[i].path) != 0)
      continue;
    if ((resp->body = strdup(files[i].body)) == NULL) {
      hr_error_set(&err, HR_ENOMEM, "", "out of memory");
      hr__http_error(resp, &err);
      return;
    }
    resp->status = 200;
    resp->content_type = files[i].type;
    return;
  }
  hr_error_set(&err, HR_ENOTFOUND, "", "no such file in the console");
  hr__http_error(resp, &err);
}
