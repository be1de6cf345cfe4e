/* tcpproxy: the network between the clients and one Kafka node, for
 * tests/kafka/broker.sh's `cut ID` and `heal ID`.
 *
 *   tcpproxy TARGET_PORT [RTT_FILE]
 *
 * Listens on 127.0.0.1 on a port the system picks, prints that port as its
 * first line on stdout, and forwards each connection to 127.0.0.1:
 * TARGET_PORT. SIGUSR1 cuts the node off: every open connection is closed
 * and new ones are accepted but never answered (packets lost, as in a
 * network partition: clients see timeouts, not refusals). SIGUSR2 heals:
 * the unanswered connections are closed and new ones are forwarded again.
 * SIGHUP reads a number of milliseconds from RTT_FILE: from then on every
 * answer of the node reaches the client that much later (a slow broker; 0:
 * none). SIGTERM or SIGINT ends it, exit 0. A target that refuses (a killed
 * node) closes the client's connection at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROXY_MAX_CONNS 256
#define PROXY_BUF       65536

typedef struct pipe_buf {
        char data[PROXY_BUF];
        size_t off, len; /* bytes [off, len) wait to be written */
        long long ready; /* not written before this (ms, monotonic) */
} pipe_buf;

/* One client connection and its connection to the node. */
typedef struct conn {
        int cfd, sfd;  /* client side, node side (-1: held, not forwarded) */
        pipe_buf up;   /* client -> node */
        pipe_buf down; /* node -> client */
} conn;

static volatile sig_atomic_t cut_req, heal_req, rtt_req, stop_req;

static void on_signal(int sig)
{
        if (sig == SIGUSR1)
                cut_req = 1;
        else if (sig == SIGUSR2)
                heal_req = 1;
        else if (sig == SIGHUP)
                rtt_req = 1;
        else
                stop_req = 1;
}

static long long now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The delay RTT_FILE names (0 when it is missing or not a number). */
static int read_rtt(const char *path)
{
        FILE *f = path ? fopen(path, "r") : NULL;
        int ms = 0;

        if (f) {
                if (fscanf(f, "%d", &ms) != 1 || ms < 0)
                        ms = 0;
                fclose(f);
        }
        return ms;
}

static void die(const char *what)
{
        fprintf(stderr, "tcpproxy: %s: %s\n", what, strerror(errno));
        exit(1);
}

static int connect_node(int port)
{
        struct sockaddr_in sa;
        int fd, one = 1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(fd, F_SETFL, O_NONBLOCK);
        return fd;
}

static void conn_close(conn *c)
{
        if (c->cfd >= 0)
                close(c->cfd);
        if (c->sfd >= 0)
                close(c->sfd);
        c->cfd = c->sfd = -1;
}

/* Move bytes from fd into b when b is empty, to be written delay ms from
 * now; 0 on end of stream or error. */
static int fill(int fd, pipe_buf *b, int delay)
{
        ssize_t n;

        if (b->off < b->len)
                return 1;
        n = read(fd, b->data, sizeof(b->data));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return 0;
        b->off = 0;
        b->len = n > 0 ? (size_t)n : 0;
        b->ready = delay > 0 && n > 0 ? now_ms() + delay : 0;
        return 1;
}

/* Write what b holds to fd; 0 on error. */
static int drain(int fd, pipe_buf *b)
{
        ssize_t n;

        if (b->off == b->len || (b->ready && now_ms() < b->ready))
                return 1;
        n = write(fd, b->data + b->off, b->len - b->off);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR;
        b->off += (size_t)n;
        return 1;
}

/* The listening socket on a free loopback port, printed on stdout. */
static int listen_loopback(void)
{
        struct sockaddr_in sa;
        socklen_t salen = sizeof(sa);
        int lfd, one = 1;

        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0)
                die("socket");
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(lfd, 64) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0)
                die("listen");
        printf("%d\n", ntohs(sa.sin_port));
        fflush(stdout);
        return lfd;
}

/* The descriptors to poll: the listener first, then for each forwarded
 * connection the side each direction waits on (a direction held back by
 * the delay is left out and shortens *timeout instead). Returns how many. */
static nfds_t poll_set(struct pollfd *pfd, int lfd, conn *conns, int *timeout)
{
        long long now = now_ms();
        nfds_t n = 0;
        int i;

        pfd[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (i = 0; i < PROXY_MAX_CONNS; i++) {
                conn *c = &conns[i];

                if (c->cfd < 0 || c->sfd < 0)
                        continue;
                pfd[n++] = (struct pollfd){
                        .fd = c->up.off < c->up.len ? c->sfd : c->cfd,
                        .events = c->up.off < c->up.len ? POLLOUT : POLLIN};
                if (c->down.off < c->down.len && now < c->down.ready) {
                        /* Held back by the delay: wake in time. */
                        if (c->down.ready - now < *timeout)
                                *timeout = (int)(c->down.ready - now);
                        continue;
                }
                pfd[n++] = (struct pollfd){
                        .fd = c->down.off < c->down.len ? c->cfd : c->sfd,
                        .events =
                                c->down.off < c->down.len ? POLLOUT : POLLIN};
        }
        return n;
}

/* A new client: forwarded to the node (or held unconnected while cut);
 * refused when every slot is taken. */
static void accept_one(int lfd, conn *conns, int port, int cut)
{
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        int i, one = 1;
        conn *c;

        if (cfd < 0)
                return;
        for (i = 0; i < PROXY_MAX_CONNS; i++)
                if (conns[i].cfd < 0)
                        break;
        if (i == PROXY_MAX_CONNS) {
                close(cfd);
                return;
        }
        c = &conns[i];
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->up.off = c->up.len = 0;
        c->down.off = c->down.len = 0;
        c->cfd = cfd;
        c->sfd = cut ? -1 : connect_node(port);
        if (!cut && c->sfd < 0)
                conn_close(c);
}

static void catch_signals(void)
{
        struct sigaction act;

        memset(&act, 0, sizeof(act));
        act.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
        sigaction(SIGUSR1, &act, NULL);
        sigaction(SIGUSR2, &act, NULL);
        sigaction(SIGHUP, &act, NULL);
        sigaction(SIGTERM, &act, NULL);
        sigaction(SIGINT, &act, NULL);
        signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
        static conn conns[PROXY_MAX_CONNS];
        struct pollfd pfd[1 + 2 * PROXY_MAX_CONNS];
        const char *rtt_file = argc > 2 ? argv[2] : NULL;
        int lfd, port, cut = 0, rtt = 0, i;

        if (argc < 2 || argc > 3 || (port = atoi(argv[1])) <= 0 ||
            port > 65535) {
                fprintf(stderr, "usage: tcpproxy TARGET_PORT [RTT_FILE]\n");
                return 2;
        }
        /* Ends with broker.sh, even when that is SIGKILLed. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
                return 0;
        catch_signals();
        lfd = listen_loopback();
        for (i = 0; i < PROXY_MAX_CONNS; i++)
                conns[i].cfd = conns[i].sfd = -1;

        while (!stop_req) {
                int timeout = 1000;
                nfds_t n;

                if (cut_req || heal_req) {
                        /* A cut drops what is open; a heal drops what was
                         * held while cut (those clients gave up by now). */
                        for (i = 0; i < PROXY_MAX_CONNS; i++)
                                conn_close(&conns[i]);
                        cut = cut_req ? 1 : 0;
                        cut_req = heal_req = 0;
                }
                if (rtt_req) {
                        rtt = read_rtt(rtt_file);
                        rtt_req = 0;
                }
                n = poll_set(pfd, lfd, conns, &timeout);
                if (poll(pfd, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        die("poll");
                }
                if (pfd[0].revents & POLLIN)
                        accept_one(lfd, conns, port, cut);
                /* Move bytes both ways for every forwarded connection; the
                 * revents only say which side is ready, the reads and
                 * writes are non-blocking. */
                for (i = 0; i < PROXY_MAX_CONNS; i++) {
                        conn *c = &conns[i];

                        if (c->cfd < 0 || c->sfd < 0)
                                continue;
                        if (!fill(c->cfd, &c->up, 0) ||
                            !drain(c->sfd, &c->up) ||
                            !fill(c->sfd, &c->down, rtt) ||
                            !drain(c->cfd, &c->down))
                                conn_close(c);
                }
        }
        for (i = 0; i < PROXY_MAX_CONNS; i++)
                conn_close(&conns[i]);
        close(lfd);
        return 0;
}
