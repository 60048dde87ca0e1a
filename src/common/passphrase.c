#include "common/passphrase.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

/* Read up to the first newline or EOF into s; at most s->cap bytes. */
static int
read_line_fd(int fd, struct ck_secret *s)
{
	unsigned char c;
	ssize_t n;

	s->len = 0;
	for (;;) {
		n = read(fd, &c, 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ck_err_set(CK_E_IO, "cannot read passphrase: %s",
			    strerror(errno));
		}
		if (n == 0 || c == '\n')
			break;
		if (s->len >= s->cap)
			return ck_err_set(CK_E_TOOBIG,
			    "passphrase longer than %d bytes",
			    CK_PASSPHRASE_MAX);
		s->buf[s->len++] = c;
	}
	c = 0;
	if (s->len > 0 && s->buf[s->len - 1] == '\r')
		s->len--;
	s->buf[s->len] = '\0';
	return 0;
}

static int
read_tty(const char *prompt, struct ck_secret *s)
{
	struct termios old, raw;
	int fd, r, restore = 0;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ck_err_set(CK_E_INVAL,
		    "no terminal to ask for the passphrase; use "
		    "--passphrase-file or --passphrase-fd");
	if (tcgetattr(fd, &old) == 0) {
		raw = old;
		raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		raw.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &raw) == 0)
			restore = 1;
	}
	(void)!write(fd, prompt, strlen(prompt));
	r = read_line_fd(fd, s);
	if (restore)
		(void)tcsetattr(fd, TCSAFLUSH, &old);
	(void)!write(fd, "\n", 1);
	close(fd);
	return r;
}

static const struct ck_secret *given;

void
ck_passphrase_set_secret(const struct ck_secret *s)
{
	given = s;
}

int
ck_passphrase_read(const struct ck_pass_src *src, const char *prompt,
    int confirm, size_t min_len, struct ck_secret **out)
{
	struct ck_secret *s = NULL, *again = NULL;
	int fd, r;

	if ((s = ck_secret_new(CK_PASSPHRASE_MAX)) == NULL)
		return CK_E_NOMEM;
	switch (src->kind) {
	case CK_PASS_TTY:
		if ((r = read_tty(prompt, s)) != 0)
			goto out;
		if (confirm) {
			if ((again = ck_secret_new(CK_PASSPHRASE_MAX)) == NULL) {
				r = CK_E_NOMEM;
				goto out;
			}
			if ((r = read_tty("Repeat the passphrase: ", again)) !=
			    0)
				goto out;
			if (!ck_secret_equal(s, again)) {
				r = ck_err_set(CK_E_PASSPHRASE,
				    "the passphrases do not match");
				goto out;
			}
		}
		break;
	case CK_PASS_FILE:
		if ((r = ck_fs_check_private_file(src->file)) != 0)
			goto out;
		/* Opened by root before it gave root up, if it was. */
		if ((fd = ck_fs_preopen_dup(src->file)) < 0)
			fd = open(src->file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = ck_err_set(CK_E_IO, "cannot open %s: %s", src->file,
			    strerror(errno));
			goto out;
		}
		r = read_line_fd(fd, s);
		close(fd);
		if (r != 0)
			goto out;
		break;
	case CK_PASS_FD:
		if (src->fd < 0) {
			r = ck_err_set(CK_E_INVAL, "bad passphrase descriptor");
			goto out;
		}
		if ((r = read_line_fd(src->fd, s)) != 0)
			goto out;
		break;
	case CK_PASS_SECRET:
		if (given == NULL || given->len > s->cap) {
			r = ck_err_set(CK_E_INVAL, "no passphrase");
			goto out;
		}
		memcpy(s->buf, given->buf, given->len);
		s->len = given->len;
		s->buf[s->len] = '\0';
		break;
	default:
		r = CK_E_INVAL;
		goto out;
	}
	if (s->len == 0) {
		r = ck_err_set(CK_E_PASSPHRASE, "empty passphrase");
		goto out;
	}
	if (s->len < min_len) {
		r = ck_err_set(CK_E_PASSPHRASE,
		    "passphrase too short: at least %zu characters", min_len);
		goto out;
	}
	*out = s;
	s = NULL;
	r = 0;
out:
	ck_secret_free(s);
	ck_secret_free(again);
	return r;
}
