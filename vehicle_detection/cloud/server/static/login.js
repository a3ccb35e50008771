// Copyright 2026 The vehicle_detection Authors. Licensed under the Apache License, Version 2.0.
// The login form: posts the name and password as JSON; the server sets the session cookie.
'use strict';

document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('error');
  error.textContent = '';
  const response = await fetch('/api/v1/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      name: document.getElementById('name').value,
      password: document.getElementById('password').value,
    }),
  });
  if (response.ok) {
    window.location.assign('/');
  } else {
    const wait = response.headers.get('Retry-After');
    if (response.status === 429) {
      error.textContent = `Locked after too many failed logins: try again in ${wait} s.`;
    } else if (response.status === 503) {
      error.textContent = 'The server is busy checking other logins: try again in a moment.';
    } else if (response.status === 401) {
      error.textContent = 'Wrong name or password.';
    } else if (response.status === 422) {
      error.textContent = 'Enter a name and a password.';
    } else {
      error.textContent = `Login failed (HTTP ${response.status}).`;
    }
  }
});
