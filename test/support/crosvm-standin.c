// STAND-IN for crosvm, for tests only: crosvm is not in Debian (and needs Android's virt APEX), so none runs here.
// A compiled program, because `stop` runs the control commands with the binary the VM runs (/proc/<pid>/exe),
// as it does with the real crosvm; a script's exe would be its interpreter. It keeps crosvm's control-socket CLI:
//   crosvm run … --socket PATH …   listens on PATH, prints to stdout (the console), runs until told to end
//   crosvm powerbtn PATH            the guest "shuts down": run prints it and exits 0
//   crosvm stop PATH                run exits 0 at once
// With CROSVM_STANDIN_IGNORE_POWERBTN=1 in run's environment the "guest" ignores the power button (a hung guest).
// run prints its LD_LIBRARY_PATH and oom_score_adj (what start.sh set up for it). SIGTERM to run is printed before it exits, so a test can tell a control-socket stop from a signal.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_socket(const char *path, struct sockaddr_un *a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  strncpy(a->sun_path, path, sizeof a->sun_path - 1);
  return socket(AF_UNIX, SOCK_STREAM, 0);
}

static void on_term(int sig) {
  (void)sig;
  static const char m[] = "crosvm stand-in: got SIGTERM\n";
  (void)!write(1, m, sizeof m - 1);
  _exit(143);
}

static int control(const char *cmd, const char *path) {
  struct sockaddr_un a;
  int s = unix_socket(path, &a);
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    fprintf(stderr, "crosvm stand-in: failed to connect to %s\n", path);
    return 1;
  }
  (void)!write(s, cmd, strlen(cmd));
  char ack[8];
  (void)!read(s, ack, sizeof ack);
  close(s);
  return 0;
}

static int run(int argc, char **argv) {
  const char *path = NULL;
  for (int i = 2; i + 1 < argc; i++) if (strcmp(argv[i], "--socket") == 0) path = argv[i + 1];
  if (!path) { fprintf(stderr, "crosvm stand-in: run needs --socket\n"); return 1; }
  signal(SIGTERM, on_term);
  struct sockaddr_un a;
  int l = unix_socket(path, &a);
  unlink(path);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 4) != 0) { perror("crosvm stand-in: socket"); return 1; }
  const int ignore = getenv("CROSVM_STANDIN_IGNORE_POWERBTN") != NULL;
  char oom[16] = "?";
  FILE *f = fopen("/proc/self/oom_score_adj", "r");
  if (f) { if (!fgets(oom, sizeof oom, f)) strcpy(oom, "?"); fclose(f); oom[strcspn(oom, "\n")] = 0; }
  const char *libs = getenv("LD_LIBRARY_PATH");
  printf("crosvm stand-in: LD_LIBRARY_PATH=%s oom_score_adj=%s\n", libs ? libs : "", oom);
  printf("crosvm stand-in: running, control socket %s\n", path);
  for (;;) {
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    char cmd[32] = {0};
    (void)!read(c, cmd, sizeof cmd - 1);
    (void)!write(c, "ok", 2);
    close(c);
    printf("crosvm stand-in: control command %s\n", cmd);
    if (strcmp(cmd, "stop") == 0 || (strcmp(cmd, "powerbtn") == 0 && !ignore)) {
      printf("crosvm stand-in: guest powered off (%s)\n", cmd);
      unlink(path);
      return 0;
    }
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc >= 3 && (strcmp(argv[1], "powerbtn") == 0 || strcmp(argv[1], "stop") == 0)) return control(argv[1], argv[2]);
  if (argc >= 2 && strcmp(argv[1], "run") == 0) return run(argc, argv);
  fprintf(stderr, "crosvm stand-in: unsupported command\n");
  return 1;
}
