/* A minimal sd_notify client for the notify-socket tests: sends each
 * argument as one datagram to $NOTIFY_SOCKET, as systemd's sd_notify does.
 * Built static at test time (busybox has no unix-datagram sender). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) {
        fprintf(stderr, "sd_notify: no NOTIFY_SOCKET\n");
        return 2;
    }
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "sd_notify: NOTIFY_SOCKET too long\n");
        return 2;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("sd_notify: socket");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (sendto(fd, argv[i], strlen(argv[i]), 0, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            perror("sd_notify: sendto");
            return 1;
        }
    }
    return 0;
}
