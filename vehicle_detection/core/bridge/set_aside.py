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
Poison events and outages: which failing events the uploader sets aside.

An event the server keeps failing (5xx) while it accepts the others is a
poison event: it is held for a growing time (:meth:`Outbox.hold`) so that
the events behind it flow. Events failing alike are no poison: the server
fails them all (an outage) and none is held. So after
:data:`~vehicle_detection.core.bridge.outbox.SET_ASIDE_AFTER` server errors in
a row an event is only suspected: it is passed over and the events behind it
are tried. If one of the same kind (alert, count record, snapshot) is stored,
the suspect is held; if one fails too, it is an outage: the suspects' errors
are forgiven and the round ends. Held events are tried again as soon as the
link is healthy after an outage (a health check passes again, or an event
is stored).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple, TYPE_CHECKING

from vehicle_detection.core.bridge.link import LinkState, LinkStats
from vehicle_detection.core.bridge.outbox import Event, Outbox

if TYPE_CHECKING:
    from vehicle_detection.core.bridge.uploader import UploadSettings

# Outcomes of a failed try: try it again, held (a poison event), suspected.
RETRY, HELD, SUSPECT = 'retry', 'held', 'suspect'


class SetAside:
    """Tells a poison event from an outage, for one drain thread."""

    def __init__(self, outbox: Outbox, settings: Callable[[], UploadSettings],
                 stats: LinkStats) -> None:
        self.outbox = outbox
        self._settings = settings
        self.stats = stats
        # This round's events failing alone: seq -> (the kind of request, event id).
        self._suspects: Dict[int, Tuple[str, str]] = {}
        self._outage = False  # the link, or several events, failed since the last success

    def new_round(self) -> None:
        """Forget the last round's suspects (they are suspected again at their next try)."""
        self._suspects.clear()

    @property
    def suspected(self) -> bool:
        """Tell whether events of this round still wait for a verdict."""
        return bool(self._suspects)

    def failed(self, event: Event, kind: str, status: Optional[int]) -> Optional[str]:
        """
        Record a failed try of ``event`` that may be retried (``status`` None: no answer).

        Return RETRY, HELD, SUSPECT, or None: the round should end (an outage).
        """
        state = self.stats.link_state
        if status is None or state == LinkState.UNEXPECTED:
            self._outage = True
        # A 5xx while the link is up (health check passes) may be this event's own fault.
        server_error = status is not None and status >= 500 and state == LinkState.UP
        verdict = self.outbox.count_attempt(event.seq, self.stats.last_error, server_error)
        if self._suspects:  # events before it failed too: the server fails every event
            self._outage = True
            self.outbox.forgive([*self._suspects, event.seq])
            self._suspects.clear()
            return None
        if verdict is None:
            return RETRY
        if verdict:  # set aside before, and failing the same way: hold it longer
            self._hold(event.seq, event.event_id)
            return HELD
        self._suspects[event.seq] = (kind, event.event_id)
        return SUSPECT

    def stored(self, kind: str) -> None:
        """Record a request of ``kind`` stored: held events go again after an outage."""
        if self._outage:
            self.link_back()
        for seq, (failed, event_id) in list(self._suspects.items()):
            if failed == kind:  # the server takes this kind and keeps failing that event
                del self._suspects[seq]
                self._hold(seq, event_id)

    def link_failed(self) -> None:
        """Record that the health check failed (no answer, 5xx, not the server's)."""
        self._outage = True

    def link_back(self) -> None:
        """Make every held event due now: the link is healthy after an outage."""
        self._outage = False
        self.outbox.release_held()

    def _hold(self, seq: int, event_id: str) -> None:
        settings = self._settings()
        seconds = self.outbox.hold(seq, settings.hold_initial, settings.hold_max)
        self.stats.last_error = (f'event {event_id} set aside for {seconds:g} s: the server '
                                 f'keeps failing it while it accepts others')
