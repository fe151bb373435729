import { me } from '/static/common/api.js';
import { wireAuthForm } from '/static/common/authform.js';

// Already logged in: the dashboard, not the form again.
me().then((m) => { if (m) location.replace('/'); }).catch(() => {});

wireAuthForm(document.getElementById('auth'), '/api/auth/login');
