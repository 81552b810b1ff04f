/* Prints the real and effective user ids it runs with. Installed setuid root in the
 * docker suite's image: run as a user, it shows whether exec gave it euid 0. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("ruid=%d euid=%d\n", (int)getuid(), (int)geteuid());
    return 0;
}
