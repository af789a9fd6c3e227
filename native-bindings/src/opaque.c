/*
 * Whether an overlay layer's directory is opaque (it hides the layers below): in both
 * libnovabox.so (`server cp`, layer.c's union walk) and novabox.node (napi.c
 * layerIsOpaque: a systemd server's create asks it of the image's layers, where loading
 * koffi and libnovabox.so for one getxattr would cost ~2-3 ms of its start).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/types.h>
#include <sys/xattr.h>

#include "novabox.h"

/* 1, 0 or -errno */
NB_API int nb_layer_is_opaque(const char *dir) {
	char v[2];
	ssize_t n = lgetxattr(dir, "trusted.overlay.opaque", v, sizeof(v));
	if (n < 0) return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
	return n == 1 && v[0] == 'y';
}
