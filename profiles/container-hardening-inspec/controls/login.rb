# Login: the same rules as container-hardening's login.yml, in InSpec syntax.

control 'ch-login-01' do
  impact 0.5
  title 'Passwords expire'
  desc 'A bounded password lifetime limits how long a leaked password stays useful.'
  tag nist: ['IA-5 (1)'], severity: 'medium'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('PASS_MAX_DAYS') { should cmp <= input('max_password_days') }
  end
end

control 'ch-login-02' do
  impact 0.3
  title 'Passwords cannot be changed back immediately'
  desc 'A minimum age stops users cycling straight back to an old password.'
  tag nist: ['IA-5 (1)'], severity: 'low'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('PASS_MIN_DAYS') { should cmp >= 1 }
  end
end

control 'ch-login-03' do
  impact 0.3
  title 'Users are warned before passwords expire'
  desc 'A warning period avoids lock-outs that lead to emergency resets.'
  tag nist: ['IA-5 (1)'], severity: 'low'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('PASS_WARN_AGE') { should cmp >= 7 }
  end
end

control 'ch-login-04' do
  impact 0.5
  title 'The default umask is restrictive'
  desc 'New files should not be readable by unrelated users.'
  tag nist: %w[AC-3 CM-6], severity: 'medium'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('UMASK') { should be_in(%w[027 077]) }
  end
end

control 'ch-login-05' do
  impact 0.5
  title 'New passwords use a strong hash'
  desc 'Only SHA-512 or yescrypt hashes resist offline cracking.'
  tag nist: ['IA-5 (1)', 'SC-13'], severity: 'medium'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('ENCRYPT_METHOD') { should be_in(%w[SHA512 YESCRYPT]) }
  end
end

control 'ch-login-06' do
  impact 0.3
  title 'Login retries are limited'
  desc 'Few retries per session slow down online guessing.'
  tag nist: %w[AC-7], severity: 'low'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('LOGIN_RETRIES') { should cmp <= 3 }
  end
end

control 'ch-login-07' do
  impact 0.3
  title 'Login prompts time out'
  desc 'Abandoned login prompts should not stay open.'
  tag nist: %w[AC-12], severity: 'low'
  only_if('/etc/login.defs does not exist') { file('/etc/login.defs').exist? }
  describe login_defs do
    its('LOGIN_TIMEOUT') { should cmp <= 60 }
  end
end

control 'ch-login-08' do
  impact 0.3
  title '/etc/login.defs is root-owned and not writable by others'
  desc 'login.defs sets password policy for every account.'
  tag nist: %w[CM-5 AC-3], severity: 'low'
  if file('/etc/login.defs').exist?
    describe file('/etc/login.defs') do
      it { should be_owned_by 'root' }
      it { should_not be_more_permissive_than('0644') }
    end
  else
    describe file('/etc/login.defs') do
      it { should_not exist }
    end
  end
end
