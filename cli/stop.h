/* stop.h - a graceful stop on SIGINT, SIGTERM and SIGHUP.
 *
 * A run that writes an archive's results must not lose what it has: the
 * first signal only sets a flag; the run loops see it, stop reading input,
 * write every finished result (flushed and fsynced), stop the daemons, and
 * then vgpt-cli dies of that same signal (exit status 128 + N: 130 for
 * Ctrl-C, 143 for kill).  A second signal kills at once (the janitor and
 * PR_SET_PDEATHSIG then clean up the daemons).  Signals ignored when
 * vgpt-cli started (nohup, a script's background job) stay ignored. */
#ifndef VGPT_CLI_STOP_H
#define VGPT_CLI_STOP_H

/* Installs the handlers (once). */
void cli_stop_install(void);
/* The signal that asked for a stop, or 0. */
int cli_stop_requested(void);
/* After the cleanup: when a stop was asked for, dies of that signal (this
 * does not return); otherwise returns rc. */
int cli_stop_finish(int rc);

#endif
