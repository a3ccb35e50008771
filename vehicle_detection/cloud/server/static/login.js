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
    error.textContent = response.status === 429
      ? 'Too many failed attempts: wait a moment.' : 'Wrong name or password.';
  }
});
