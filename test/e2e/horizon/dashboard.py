"""Horizon as Debian packages it, on a loopback port, in front of `novabox serve`.

Debian's openstack-dashboard settings (openstack_dashboard.settings, which reads
/etc/openstack-dashboard/local_settings.py and local_settings.d/ - its offline-compressed
static files, locmem cache) with only what points it at novabox overridden below; served
by Django's own threaded WSGI server (what `manage.py runserver` uses) in this one process,
the static files from Debian's STATIC_ROOT. Runs until SIGTERM.

usage: /usr/bin/python3 dashboard.py PORT KEYSTONE_URL
"""
import mimetypes
import os
import signal
import sys
import types

PORT = int(sys.argv[1])
KEYSTONE_URL = sys.argv[2]

sys.path.insert(0, '/usr/share/openstack-dashboard')

settings = types.ModuleType('novabox_horizon_settings')
exec(
    compile(
        'from openstack_dashboard.settings import *\n',
        'novabox_horizon_settings',
        'exec',
    ),
    settings.__dict__,
)
overrides = {
    'OPENSTACK_KEYSTONE_URL': KEYSTONE_URL,
    'ALLOWED_HOSTS': ['127.0.0.1'],
    'DEBUG': False,
    # One process: Debian's locmem cache holds the sessions (Horizon's default engine).
    'SESSION_ENGINE': 'django.contrib.sessions.backends.cache',
    'CACHES': {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}},
    'OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT': False,
    'OPENSTACK_KEYSTONE_DEFAULT_DOMAIN': 'Default',
    'OPENSTACK_API_VERSIONS': {'identity': 3, 'image': 2, 'compute': 2},
    # novabox has no Neutron: no routers, quotas or other network-side panels.
    'OPENSTACK_NEUTRON_NETWORK': {
        'enable_router': False,
        'enable_quotas': False,
        'enable_ipv6': False,
        'enable_distributed_router': False,
        'enable_ha_router': False,
        'enable_fip_topology_check': False,
        'enable_rbac_policy': False,
        'enable_auto_allocated_network': False,
    },
    'OPENSTACK_CINDER_FEATURES': {'enable_backup': False},
    'LAUNCH_INSTANCE_DEFAULTS': {
        **settings.LAUNCH_INSTANCE_DEFAULTS,
        'create_volume': False,
        'hide_create_volume': True,
        'disable_volume': True,
        'disable_volume_snapshot': True,
    },
    'LOGGING': {
        'version': 1,
        'disable_existing_loggers': False,
        'handlers': {'console': {'class': 'logging.StreamHandler', 'level': 'INFO'}},
        'loggers': {
            name: {'handlers': ['console'], 'level': 'INFO', 'propagate': False}
            for name in ('horizon', 'openstack_dashboard', 'openstack_auth', 'django', 'novaclient', 'keystoneauth', 'glanceclient')
        },
    },
}
settings.__dict__.update(overrides)
sys.modules['novabox_horizon_settings'] = settings
os.environ['DJANGO_SETTINGS_MODULE'] = 'novabox_horizon_settings'

import django  # noqa: E402
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

django.setup()
app = get_wsgi_application()
from django.conf import settings as conf  # noqa: E402

STATIC_URL = conf.STATIC_URL
STATIC_ROOT = os.path.realpath(conf.STATIC_ROOT)


def static_or_app(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if not path.startswith(STATIC_URL):
        return app(environ, start_response)
    file = os.path.realpath(os.path.join(STATIC_ROOT, path[len(STATIC_URL):]))
    if not file.startswith(STATIC_ROOT + os.sep) or not os.path.isfile(file):
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'not found']
    ctype = mimetypes.guess_type(file)[0] or 'application/octet-stream'
    with open(file, 'rb') as f:
        body = f.read()
    start_response('200 OK', [('Content-Type', ctype), ('Content-Length', str(len(body))), ('Cache-Control', 'max-age=3600')])
    return [body]


class Quiet(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        if os.environ.get('NBX_HORIZON_ACCESS_LOG'):
            sys.stderr.write('horizon: %s\n' % (fmt % args))


import socketserver  # noqa: E402


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


httpd = Server(('127.0.0.1', PORT), Quiet)
httpd.set_app(static_or_app)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print('horizon: listening on http://127.0.0.1:%d' % httpd.server_address[1], flush=True)
try:
    httpd.serve_forever()
finally:
    httpd.server_close()
