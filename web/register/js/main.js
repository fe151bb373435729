import { wireAuthForm } from '/static/common/authform.js';

wireAuthForm(document.getElementById('auth'), '/api/auth/register');
