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

"""
Snapshots in S3-compatible object storage (AWS S3, MinIO, SeaweedFS), with boto3.

``--storage s3://bucket/prefix``: the endpoint, region and credentials come
from boto3's usual sources (``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` and ``~/.aws/config``). The store keeps the contract of
:class:`storage.ImageStore`: every key is ``prefix/<name>`` with a checked
name; a snapshot is written once with a conditional write (``If-None-Match:
*``: the first complete object wins, whatever the number of server
instances); thumbnails are cached under ``prefix/.thumbnails/``. Every call
is bounded (connect and read timeouts, two attempts), so a dead store costs
a request a few seconds and an answer of 503, never a hung worker.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from vehicle_detection.cloud.server.storage import (
    checked_name, DAY_FOLDER, ImageStore, log, make_thumbnail, S3_SCHEME, SnapshotConflict,
    SnapshotMissing, StorageError, StorageFull, StorageUnavailable, StoredObject, THUMBNAILS)

CONNECT_TIMEOUT_S = 2.0
# A store that accepts connections and never answers (hung) costs a PUT two attempts of
# 1 s (waiting for "100 Continue") + 3 s: 8 s, under the edge's 10 s per request, so the
# edge gets the 503 and its Retry-After rather than a time-out.
READ_TIMEOUT_S = 3.0
TOTAL_ATTEMPTS = 2  # the first try and one retry
POOL_CONNECTIONS = 64  # more than the worker's request threads: none waits for a socket
# Answers that say the store has no room: MinIO's drive threshold (507), Ceph RGW's and
# others' quota. SeaweedFS (4.48) answers a full volume set or a bucket over its quota
# with a plain 500 InternalError: that is 503, like any other refusal.
FULL_CODES = frozenset({'XMinioStorageFull', 'InsufficientStorage', 'QuotaExceeded',
                        'StorageFull', 'NotEnoughSpace'})
EXISTS_CODES = frozenset({'PreconditionFailed', '412'})
# AWS answers 409 while another conditional write of the key is in flight: try again.
RACING_CODES = frozenset({'ConditionalRequestConflict', 'OperationAborted'})
MISSING_CODES = frozenset({'NoSuchKey', '404', 'NotFound'})
RACE_RETRIES = 3


def client_config() -> Config:
    """Return the bounded client configuration (timeouts, attempts, connection pool)."""
    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                  retries={'total_max_attempts': TOTAL_ATTEMPTS, 'mode': 'standard'},
                  max_pool_connections=POOL_CONNECTIONS)


def make_client() -> Any:
    """
    Return an S3 client configured from the environment and AWS config files.

    Outside AWS (an ``AWS_ENDPOINT_URL_S3`` such as MinIO or SeaweedFS) the
    bucket goes in the path, not in the host name, which needs no DNS entry
    per bucket.
    """
    session = boto3.session.Session()
    client = session.client('s3', config=client_config())
    if not client.meta.endpoint_url.rstrip('/').endswith('.amazonaws.com'):
        client = session.client('s3', config=client_config().merge(
            Config(s3={'addressing_style': 'path'})))
    return client


class S3ImageStore(ImageStore):
    """Snapshots as objects under ``prefix/`` of one bucket, each written once."""

    def __init__(self, bucket: str, prefix: str, client: Any = None) -> None:
        if not bucket:
            raise StorageError('--storage s3://BUCKET/prefix: the bucket is missing')
        self.bucket = bucket
        self.prefix = checked_name(prefix.strip('/')) + '/' if prefix.strip('/') else ''
        self.client = client or make_client()
        self.where = f'{S3_SCHEME}{bucket}/{self.prefix} at {self.client.meta.endpoint_url}'

    @classmethod
    def from_url(cls, url: str) -> 'S3ImageStore':
        """Build the store of ``s3://bucket/prefix``."""
        bucket, _, prefix = url[len(S3_SCHEME):].partition('/')
        return cls(bucket, prefix)

    def _key(self, name: str) -> str:
        return self.prefix + checked_name(name)

    def put(self, name: str, data: bytes) -> bool:
        """Store ``data`` once (``If-None-Match: *``); False when the same bytes were there."""
        key = self._key(name)
        for attempt in range(RACE_RETRIES):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                       ContentType='image/jpeg', IfNoneMatch='*')
                return True
            except ClientError as error:
                code = _code(error)
                if code in RACING_CODES and attempt + 1 < RACE_RETRIES:
                    time.sleep(0.1 * (attempt + 1))  # the other write ends within moments
                    continue
                if code not in EXISTS_CODES and code not in RACING_CODES:
                    raise self._error('store', name, error) from error
            except BotoCoreError as error:
                raise self._error('store', name, error) from error
            try:
                stored = self.get(name)
            except SnapshotMissing:  # removed since (an undone upload): try again
                continue
            if _digest(stored) == _digest(data):
                return False
            raise SnapshotConflict(f'another snapshot is already stored as {name}')
        raise StorageUnavailable(f'{name} is being written by another upload: try again')

    def get(self, name: str) -> bytes:
        """Return the bytes of ``name``."""
        return self._read(self._key(name), name)

    def _read(self, key: str, name: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
            return answer['Body'].read()
        except (ClientError, BotoCoreError) as error:
            raise self._error('read', name, error) from error

    def thumbnail(self, name: str) -> bytes:
        """Return the cached thumbnail of ``name``, making and storing it on first use."""
        cached = self._key(f'{THUMBNAILS}/{name}')
        try:
            return self._read(cached, name)
        except SnapshotMissing:
            pass
        data = make_thumbnail(self.get(name))
        try:  # a cache: a store that refuses it still serves the thumbnail
            self.client.put_object(Bucket=self.bucket, Key=cached, Body=data,
                                   ContentType='image/jpeg')
        except (ClientError, BotoCoreError) as error:
            log.warning('thumbnail of %s not cached: %s', name, error)
        return data

    def delete(self, name: str) -> None:
        """Remove ``name`` and its thumbnail."""
        self.delete_many([name, f'{THUMBNAILS}/{name}'])

    def delete_many(self, names: Iterable[str]) -> None:
        """Remove these objects, up to 1000 a request."""
        keys = [self._key(name) for name in names]
        for start in range(0, len(keys), 1000):
            batch = [{'Key': key} for key in keys[start:start + 1000]]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket,
                                                    Delete={'Objects': batch, 'Quiet': True})
            except (ClientError, BotoCoreError) as error:
                raise self._error('delete', batch[0]['Key'], error) from error
            failed = [item for item in answer.get('Errors', [])
                      if item.get('Code') not in MISSING_CODES]
            if failed:
                raise StorageUnavailable(f'{self.where} did not delete {failed[0].get("Key")}: '
                                         f'{failed[0].get("Code")} {failed[0].get("Message")}')

    def day_folders(self, thumbnails: bool = False) -> List[str]:
        """Return the day folders under the prefix (or under its thumbnail folder)."""
        base = self.prefix + (THUMBNAILS + '/' if thumbnails else '')
        folders = []
        for page in self._pages(base, Delimiter='/'):
            for common in page.get('CommonPrefixes', []):
                folder = common['Prefix'][len(base):].rstrip('/')
                if DAY_FOLDER.fullmatch(folder):
                    folders.append(folder)
        return sorted(folders)

    def listing(self, folder: str) -> Iterator[List[StoredObject]]:
        """Yield the objects under ``folder``, a page (up to 1000) at a time."""
        base = self._key(folder) + '/'
        for page in self._pages(base):
            batch = [StoredObject(item['Key'][len(self.prefix):], int(item['Size']),
                                  item['LastModified'].timestamp())
                     for item in page.get('Contents', [])]
            if batch:
                yield batch

    def _pages(self, prefix: str, **options: str) -> Iterator[Dict[str, Any]]:
        token: Optional[str] = None
        while True:
            extra = {'ContinuationToken': token} if token else {}
            try:
                page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix,
                                                   **options, **extra)
            except (ClientError, BotoCoreError) as error:
                raise self._error('list', prefix, error) from error
            yield page
            token = page.get('NextContinuationToken')
            if not page.get('IsTruncated') or not token:
                return

    def check(self) -> None:
        """
        Check the bucket is there and writable, and that it enforces write-once.

        A probe object is written twice with ``If-None-Match: *``: a store that
        takes the second write would let a later upload replace a stored
        snapshot, so it is refused here, with the reason.
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            status = error.response.get('ResponseMetadata', {}).get('HTTPStatusCode')
            if status == 404 or _code(error) in ('NoSuchBucket', '404'):
                raise StorageError(f'bucket {self.bucket} does not exist at '
                                   f'{self.client.meta.endpoint_url}: create it first '
                                   f'(aws s3 mb s3://{self.bucket})') from None
            raise self._error('reach', self.bucket, error) from error
        except BotoCoreError as error:
            raise self._error('reach', self.bucket, error) from error
        probe = f'.probe/{uuid.uuid4()}'
        try:
            if not self.put(probe, b'write-once probe'):
                raise StorageError(f'{self.where}: probe {probe} existed')
            try:
                self.put(probe, b'a second write')
            except SnapshotConflict:
                return  # refused: conditional writes work
            raise StorageError(f'{self.where} does not enforce conditional writes '
                               f'(If-None-Match: *): snapshots could be overwritten; use a '
                               f'store that does (AWS S3, MinIO, SeaweedFS 4.x)')
        finally:
            try:
                self.delete_many([probe])
            except StorageError as error:
                log.warning('probe object %s not removed: %s', probe, error)

    def _error(self, action: str, name: str, error: Exception) -> StorageError:
        """Map a botocore error to the store's errors (507, 503, missing)."""
        if isinstance(error, NoCredentialsError):
            return StorageUnavailable(f'no credentials for {self.where}: set AWS_ACCESS_KEY_ID '
                                      f'and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE')
        if isinstance(error, BotoCoreError):
            return StorageUnavailable(f'cannot {action} {name}: {self.where} does not answer '
                                      f'({error})')
        assert isinstance(error, ClientError)
        code = _code(error)
        status = error.response.get('ResponseMetadata', {}).get('HTTPStatusCode')
        message = error.response.get('Error', {}).get('Message', '')
        if code in MISSING_CODES and action == 'read':
            return SnapshotMissing(f'snapshot {name} is not stored')
        if code in FULL_CODES or status == 507:
            return StorageFull(f'no space left to store {name} in {self.where}: {code} {message}')
        if code in ('AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch') or \
                status == 403:
            return StorageUnavailable(f'{self.where} refused to {action} {name}: {code} (check '
                                      f'the credentials and the bucket policy: s3:GetObject, '
                                      f's3:PutObject, s3:DeleteObject, s3:ListBucket)')
        if code == 'NoSuchBucket':
            return StorageUnavailable(f'bucket {self.bucket} does not exist at '
                                      f'{self.client.meta.endpoint_url}')
        return StorageUnavailable(f'cannot {action} {name}: {self.where} answered {status} '
                                  f'{code} {message}'.rstrip())


def _code(error: ClientError) -> str:
    return str(error.response.get('Error', {}).get('Code', ''))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
